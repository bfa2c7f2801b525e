"""Forms of the hosts blueprint."""

from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Optional

from ... import states
from ...limits import HOST_PASSWORD_MAX, HOST_PASSWORD_MESSAGE
from ...services import validate
from ..rules import Checked, at_most

SHARES = [SelectChoice(value, label) for value, label in states.SHARE.choices()]

# the hosts service's own checks and bounds (app.limits), with its messages
ADDRESS = Checked(validate.address)
HOST_NAME = Checked(lambda value: validate.name(value, "host name"))
USER = Checked(validate.user)
HOST_PASSWORD = at_most(HOST_PASSWORD_MAX, HOST_PASSWORD_MESSAGE)
NETWORK = Checked(validate.network)
FINGERPRINT = Checked(validate.fingerprint)

DATA_ADDRESS_HELP = (
    "Where live migrations reach the host (QEMU listens there only): an address on a network"
    " guests cannot reach. Empty: the address."
)


class HostForm(FlaskForm):
    """Register a host."""

    address = StringField(
        "Address",
        validators=[DataRequired(), ADDRESS],
        description="IP address or DNS name the controller reaches by SSH.",
    )
    name = StringField(
        "Name", validators=[Optional(), HOST_NAME], description="Defaults to the address."
    )
    user = StringField("Sudo user", validators=[DataRequired(), USER])
    password = PasswordField(
        "Sudo password",
        validators=[Optional(), HOST_PASSWORD],
        description="Used to install the controller's SSH key; stored encrypted, never shown.",
    )
    share = SelectField("Repository mount", choices=SHARES, default=states.NFS)
    network = StringField(
        "VM network",
        default="default",
        validators=[NETWORK],
        description="libvirt network name, bridge:NAME, or none.",
    )
    data_address = StringField(
        "Data address",
        validators=[Optional(), ADDRESS],
        description=DATA_ADDRESS_HELP,
    )
    prepare = BooleanField("Prepare the host with host_add.yaml", default=True)
    submit = SubmitField("Add host")


class HostEditForm(FlaskForm):
    """Change a host's fields."""

    name = StringField("Name", validators=[DataRequired(), HOST_NAME])
    user = StringField("Sudo user", validators=[DataRequired(), USER])
    password = PasswordField(
        "New sudo password",
        validators=[Optional(), HOST_PASSWORD],
        description="Leave empty to keep the stored one; required with a new address.",
    )
    network = StringField("VM network", validators=[DataRequired(), NETWORK])
    address = StringField(
        "Address",
        validators=[DataRequired(), ADDRESS],
        description=(
            "Changing it (or the mount) re-runs host_add.yaml; only on a host without VMs. A new"
            " address needs the sudo password of the machine there."
        ),
    )
    share = SelectField("Repository mount", choices=SHARES)
    data_address = StringField(
        "Data address",
        validators=[Optional(), ADDRESS],
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
        validators=[DataRequired(), FINGERPRINT],
        description="Read it on the host itself (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub).",
    )
    submit = SubmitField("Accept the new key")


class DrainForm(FlaskForm):
    """Move every VM off a host (it goes into maintenance)."""

    submit = SubmitField("Drain")
