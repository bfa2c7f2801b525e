"""Forms of the images blueprint."""

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import StringField, SubmitField
from wtforms.validators import DataRequired, Length, Optional

from ...services.images import DEFAULT_RELEASE, DEFAULT_SIZE


class UploadForm(FlaskForm):
    """Upload a base image into the repository."""

    file = FileField("Image file (qcow2 or raw)", validators=[FileRequired()])
    name = StringField(
        "Name",
        validators=[Optional(), Length(max=128)],
        description="Defaults to the file's name; keep the extension.",
    )
    description = StringField("Description", validators=[Optional(), Length(max=500)])
    submit = SubmitField("Upload")


class BuildForm(FlaskForm):
    """Build a Debian guest image (the images service checks every field)."""

    def __init__(self, *args, **kwargs):
        # on the page beside the upload form: prefixed, so no field name or id is shared
        super().__init__(*args, prefix="build", **kwargs)

    name = StringField(
        "Name",
        validators=[DataRequired(), Length(max=128)],
        description="Written as images/NAME.qcow2.",
    )
    release = StringField(
        "Debian release",
        default=DEFAULT_RELEASE,
        validators=[DataRequired(), Length(max=31)],
    )
    size = StringField(
        "Disk size",
        default=DEFAULT_SIZE,
        validators=[DataRequired(), Length(max=20)],
        description="Like 4G or 2048M (2G to 64G).",
    )
    submit = SubmitField("Build image")
