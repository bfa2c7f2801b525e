"""Forms of the vms blueprint."""

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Optional

from ... import cloudinit
from ...adapters.vm_files import check_vm_id
from ...limits import MEM, SNAPSHOT_NAME_MAX, VCPUS, VOLUME_SIZE
from ...services import saved_image, snapshots
from ..rules import Checked, within

AUTOMATIC = ""


class VmForm(FlaskForm):
    """Create a VM; the routes fill the image and host choices."""

    id = StringField(
        "Name",
        validators=[DataRequired(), Checked(check_vm_id)],
        description="Letters, digits, '_', '.', '-'. Also the libvirt domain name and the"
        " disk vms/NAME.qcow2.",
    )
    # the service checks the choice (a member's own projects only); none: the default one
    project = SelectField(
        "Project",
        validators=[Optional()],
        validate_choice=False,
        description="Its quotas must have room.",
    )
    image = SelectField("Base image", validators=[DataRequired()])
    disk = IntegerField(
        "Disk (GiB)",
        validators=[Optional(), *within(VOLUME_SIZE)],
        description="At least the image's virtual size (proposed); larger grows the disk.",
    )
    mem = IntegerField(
        "Memory (MiB)",
        default=512,
        validators=[InputRequired(), *within(MEM)],
    )
    vcpus = IntegerField("vCPUs", default=1, validators=[InputRequired(), *within(VCPUS)])
    host = SelectField(
        "Host",
        default=AUTOMATIC,
        description="Automatic placement picks a ready host with room (PLACEMENT setting).",
    )
    # the service checks each network (one of the VM's project) and the address
    networks = SelectMultipleField(
        "Networks",
        validate_choice=False,
        description="One NIC on each network chosen, in the order listed (Ctrl or Shift for"
        " several); each gets the next free address of its range.",
    )
    ip = StringField(
        "Fixed address",
        validators=[Optional()],
        render_kw={"autocomplete": "off", "placeholder": "10.20.0.5"},
        description="Optional: the first NIC's address instead of the next free one (in its"
        " network's range, not in use).",
    )
    hostname = StringField(
        "Hostname",
        validators=[Optional(), Checked(cloudinit.check_hostname)],
        description="What the guest calls itself (cloud-init). Empty: the VM's name.",
    )
    saved_keys = SelectMultipleField(
        "Your SSH keys",
        coerce=int,
        description="Keys kept under Account > SSH keys (choose several with Ctrl or Shift).",
    )
    ssh_keys = TextAreaField(
        "Other SSH public keys",
        validators=[Optional(), Checked(cloudinit.check_ssh_keys, strip=False)],
        render_kw={"rows": 3, "spellcheck": "false", "placeholder": "ssh-ed25519 AAAA… you@laptop"},
        description="One per line (the contents of ~/.ssh/id_ed25519.pub): they may log in as"
        " the image's default user (debian on Nube's Debian images).",
    )
    user_data = TextAreaField(
        "User data",
        validators=[Optional(), Checked(cloudinit.check_user_data, strip=False)],
        render_kw={"rows": 5, "spellcheck": "false", "class": "font-monospace"},
        description="Optional: a #cloud-config document or a #! script, run at first boot"
        " (at most 64 KiB).",
    )
    start = BooleanField("Start it once created", default=False)
    submit = SubmitField("Create VM")


class ConfirmForm(FlaskForm):
    """A destructive action: the operator types the VM's id to confirm."""

    confirm = StringField("Type the VM's name to confirm", validators=[DataRequired()])
    volumes = BooleanField("Also remove its volumes", default=False)
    submit = SubmitField("Remove VM")


class MigrateForm(FlaskForm):
    """Move a VM to another host; the route fills the host choices."""

    host = SelectField(
        "Destination",
        default=AUTOMATIC,
        validate_choice=False,  # the service checks the host, with the reason when it cannot
        description="Automatic placement never picks the VM's own host.",
    )
    submit = SubmitField("Migrate")


class ResizeForm(FlaskForm):
    """Change a VM's memory and vCPUs (stopped) and grow its disk; the route prefills it."""

    mem = IntegerField("Memory (MiB)", validators=[InputRequired(), *within(MEM)])
    vcpus = IntegerField("vCPUs", validators=[InputRequired(), *within(VCPUS)])
    disk = IntegerField("Disk (GiB)", validators=[Optional(), *within(VOLUME_SIZE)])
    submit = SubmitField("Resize")


class SaveImageForm(FlaskForm):
    """Save a stopped VM's disk (or one of its snapshots) as an image."""

    name = StringField(
        "Image name",
        validators=[DataRequired(), Checked(saved_image.check_name)],
        description="A file in images/, ending in .qcow2 or .img.",
    )
    snapshot = StringField(
        "Snapshot",
        validators=[Optional(), Checked(saved_image.check_snapshot)],
        description="Empty: the disk as it is now.",
    )
    submit = SubmitField("Save as image")


class AttachForm(FlaskForm):
    """Attach an available volume to a VM; the route fills the choices."""

    volume = SelectField(
        "Volume",
        validators=[DataRequired()],
        validate_choice=False,  # the service checks it (its project, its state)
    )
    submit = SubmitField("Attach")


class SnapshotForm(FlaskForm):
    """Take a snapshot of a VM: its name."""

    name = StringField(
        "Snapshot name",
        validators=[DataRequired(), Checked(snapshots.check_name)],
        render_kw={"maxlength": SNAPSHOT_NAME_MAX, "autocomplete": "off"},
        description=f"At most {SNAPSHOT_NAME_MAX} letters, digits, '_', '.', '-'.",
    )
    submit = SubmitField("Take snapshot")


class SnapshotConfirmForm(FlaskForm):
    """Revert to or delete a snapshot: the operator types its name to confirm."""

    confirm = StringField("Type the snapshot's name to confirm", validators=[DataRequired()])
