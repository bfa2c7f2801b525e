"""Forms of the images blueprint."""

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import StringField, SubmitField
from wtforms.validators import DataRequired, Optional
from wtforms.widgets import URLInput

from ...adapters.storage import check_image_name
from ...limits import IMAGE_DESCRIPTION_MAX, IMAGE_DESCRIPTION_MESSAGE
from ...services.image_spec import build_file_name, check_release, parse_size
from ...services.images import DEFAULT_RELEASE, DEFAULT_SIZE
from ...services.import_spec import check_os, check_sha256, import_file_name
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


class ImportForm(FlaskForm):
    """Import an image from an http(s) URL (the import service checks every field, and each
    address when it fetches)."""

    def __init__(self, *args, **kwargs):
        # on the page beside the other forms: prefixed, so no field name or id is shared
        super().__init__(*args, prefix="import", **kwargs)

    name = StringField(
        "Name",
        validators=[DataRequired(), Checked(import_file_name)],
        description="Stored as images/NAME.qcow2 (a raw image is converted).",
    )
    url = StringField("URL", validators=[DataRequired()], widget=URLInput())
    sha256 = StringField(
        "SHA-256",
        validators=[Optional(), Checked(check_sha256)],
        description="The file's checksum, or give a checksums file below.",
    )
    checksums_url = StringField(
        "Checksums file URL",
        validators=[Optional()],
        widget=URLInput(),
        description="A SHA256SUMS file that names the URL's file.",
    )
    os = StringField(
        "OS", validators=[Optional(), Checked(check_os)], description="What it holds: debian-12."
    )
    submit = SubmitField("Import")
