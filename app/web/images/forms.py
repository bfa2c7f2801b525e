"""Forms of the images blueprint."""

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import StringField, SubmitField
from wtforms.validators import DataRequired, Optional

from ...adapters.storage import check_image_name
from ...limits import IMAGE_DESCRIPTION_MAX, IMAGE_DESCRIPTION_MESSAGE
from ...services.image_spec import build_file_name, check_release, parse_size
from ...services.images import DEFAULT_RELEASE, DEFAULT_SIZE
from ..rules import Checked, at_most


class UploadForm(FlaskForm):
    """Upload a base image into the repository."""

    file = FileField("Image file (qcow2 or raw)", validators=[FileRequired()])
    name = StringField(
        "Name",
        validators=[Optional(), Checked(check_image_name)],
        description="Defaults to the file's name; keep the extension.",
    )
    description = StringField(
        "Description",
        validators=[Optional(), at_most(IMAGE_DESCRIPTION_MAX, IMAGE_DESCRIPTION_MESSAGE)],
    )
    submit = SubmitField("Upload")


class BuildForm(FlaskForm):
    """Build a Debian guest image (the images service checks every field)."""

    def __init__(self, *args, **kwargs):
        # on the page beside the upload form: prefixed, so no field name or id is shared
        super().__init__(*args, prefix="build", **kwargs)

    name = StringField(
        "Name",
        validators=[DataRequired(), Checked(build_file_name)],
        description="Written as images/NAME.qcow2.",
    )
    release = StringField(
        "Debian release",
        default=DEFAULT_RELEASE,
        validators=[DataRequired(), Checked(check_release)],
    )
    size = StringField(
        "Disk size",
        default=DEFAULT_SIZE,
        validators=[DataRequired(), Checked(parse_size)],
        description="Like 4G or 2048M (2G to 64G).",
    )
    submit = SubmitField("Build image")
