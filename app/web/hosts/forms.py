"""Forms of the hosts blueprint."""

from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from ... import states

SHARES = [SelectChoice(value, label) for value, label in states.SHARE.choices()]

DATA_ADDRESS_HELP = (
    "Where live migrations reach the host (QEMU listens there only): an address on a network"
    " guests cannot reach. Empty: the address."
)


class HostForm(FlaskForm):
    """Register a host."""

    address = StringField(
        "Address",
        validators=[DataRequired(), Length(max=253)],
        description="IP address or DNS name the controller reaches by SSH.",
    )
    name = StringField(
        "Name", validators=[Optional(), Length(max=63)], description="Defaults to the address."
    )
    user = StringField("Sudo user", validators=[DataRequired(), Length(max=32)])
    password = PasswordField(
        "Sudo password",
        validators=[Optional(), Length(max=256)],
        description="Used to install the controller's SSH key; stored encrypted, never shown.",
    )
    share = SelectField("Repository mount", choices=SHARES, default=states.NFS)
    network = StringField(
        "VM network",
        default="default",
        validators=[Length(max=70)],
        description="libvirt network name, bridge:NAME, or none.",
    )
    data_address = StringField(
        "Data address",
        validators=[Optional(), Length(max=253)],
        description=DATA_ADDRESS_HELP,
    )
    prepare = BooleanField("Prepare the host with host_add.yaml", default=True)
    submit = SubmitField("Add host")


class HostEditForm(FlaskForm):
    """Change a host's fields."""

    name = StringField("Name", validators=[DataRequired(), Length(max=63)])
    user = StringField("Sudo user", validators=[DataRequired(), Length(max=32)])
    password = PasswordField(
        "New sudo password",
        validators=[Optional(), Length(max=256)],
        description="Leave empty to keep the stored one; required with a new address.",
    )
    network = StringField("VM network", validators=[DataRequired(), Length(max=70)])
    address = StringField(
        "Address",
        validators=[DataRequired(), Length(max=253)],
        description=(
            "Changing it (or the mount) re-runs host_add.yaml; only on a host without VMs. A new"
            " address needs the sudo password of the machine there."
        ),
    )
    share = SelectField("Repository mount", choices=SHARES)
    data_address = StringField(
        "Data address",
        validators=[Optional(), Length(max=253)],
        description=DATA_ADDRESS_HELP,
    )
    state = SelectField("State", choices=list(states.HOST_OPERATOR_SETTABLE))
    submit = SubmitField("Save")


class ConfirmForm(FlaskForm):
    """A destructive action: the operator types the name to confirm."""

    confirm = StringField("Type the host's name to confirm", validators=[DataRequired()])
    drain = BooleanField("Move its VMs to other hosts first (drain) instead of deleting them")
    submit = SubmitField("Remove host")


class AcceptKeyForm(FlaskForm):
    """An admin accepts the SSH key a reinstalled host now offers."""

    fingerprint = StringField(
        "Fingerprint of the host's new key",
        validators=[DataRequired(), Length(max=80)],
        description="Read it on the host itself (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub).",
    )
    submit = SubmitField("Accept the new key")


class DrainForm(FlaskForm):
    """Move every VM off a host (it goes into maintenance)."""

    submit = SubmitField("Drain")
