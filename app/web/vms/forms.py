"""Forms of the vms blueprint."""

from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, NumberRange

from ...domain_xml import MEM_MAX, MEM_MIN, VCPUS_MAX, VCPUS_MIN

AUTOMATIC = ""


class VmForm(FlaskForm):
    """Create a VM; the routes fill the image and host choices."""

    id = StringField(
        "Name",
        validators=[DataRequired(), Length(max=63)],
        description="Letters, digits, '_', '.', '-'. Also the libvirt domain name and the"
        " disk vms/NAME.qcow2.",
    )
    image = SelectField("Base image", validators=[DataRequired()])
    mem = IntegerField(
        "Memory (MiB)",
        default=512,
        validators=[DataRequired(), NumberRange(min=MEM_MIN, max=MEM_MAX)],
    )
    vcpus = IntegerField(
        "vCPUs", default=1, validators=[DataRequired(), NumberRange(min=VCPUS_MIN, max=VCPUS_MAX)]
    )
    host = SelectField(
        "Host",
        default=AUTOMATIC,
        description="Automatic placement picks a ready host with room (PLACEMENT setting).",
    )
    start = BooleanField("Start it once created", default=False)
    submit = SubmitField("Create VM")


class ConfirmForm(FlaskForm):
    """A destructive action: the operator types the VM's id to confirm."""

    confirm = StringField("Type the VM's name to confirm", validators=[DataRequired()])
    submit = SubmitField("Remove VM")
