"""Forms of the volumes blueprint (and the VM page's volume forms)."""

from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, InputRequired, Optional

from ...adapters.volume_files import check_volume_name
from ...limits import VOLUME_NAME_MAX, VOLUME_SIZE
from ..rules import Checked, within

NO_IMAGE = ""


class VolumeForm(FlaskForm):
    """Create a volume; the route fills the image and project choices."""

    name = StringField(
        "Name",
        validators=[DataRequired(), Checked(check_volume_name)],
        render_kw={"maxlength": VOLUME_NAME_MAX, "autocomplete": "off"},
        description=f"At most {VOLUME_NAME_MAX} letters, digits, '_', '.', '-'. Also the file"
        " volumes/NAME.qcow2 and the serial the guest finds it by"
        " (/dev/disk/by-id/virtio-NAME).",
    )
    size = IntegerField("Size (GiB)", default=1, validators=[InputRequired(), *within(VOLUME_SIZE)])
    image = SelectField(
        "Image",
        default=NO_IMAGE,
        validators=[Optional()],
        description="Empty, or a copy of an image's contents (at least the image's size).",
    )
    # the service checks the choice (a member's own projects only); none: the default one
    project = SelectField(
        "Project",
        validators=[Optional()],
        validate_choice=False,
        description="Its disk quota counts the volume's size.",
    )
    submit = SubmitField("Create volume")


class GrowForm(FlaskForm):
    """Grow a volume to a new size (never shrink)."""

    size = IntegerField("New size (GiB)", validators=[InputRequired(), *within(VOLUME_SIZE)])


class RemoveForm(FlaskForm):
    """Remove a volume: the operator types its name to confirm."""

    confirm = StringField("Type the volume's name to confirm", validators=[DataRequired()])
