"""The API's volume schemas (marshmallow), as app/web/api_v1/schemas.py makes the others: the
bounds and patterns from app.limits, the states from app.states."""

from marshmallow import Schema, fields

from ... import states
from ...limits import VOLUME_NAME_MAX, VOLUME_NAME_RE, VOLUME_SIZE
from .schemas import within

VOLUME_STATES = list(states.VOLUME.values)
VOLUME_TASKS = list(states.VOLUME_TASK.values)

VOLUME_NAME = {"pattern": VOLUME_NAME_RE.pattern, "maxLength": VOLUME_NAME_MAX}


class Volume(Schema):
    """A volume as listVolumes shows it, plus what its page shows."""

    name = fields.String(required=True, metadata=VOLUME_NAME)
    size = fields.Integer(required=True, metadata={"description": "GiB"})
    format = fields.String(allow_none=True)
    image = fields.String(allow_none=True, metadata={"description": "the image it was made from"})
    vm = fields.String(allow_none=True, metadata={"description": "the VM it is attached to"})
    target = fields.String(allow_none=True, metadata={"description": "its device there: vdb..."})
    state = fields.String(required=True, metadata={"enum": VOLUME_STATES})
    task = fields.String(allow_none=True, metadata={"enum": [*VOLUME_TASKS, None]})
    task_op = fields.Integer(allow_none=True)
    project = fields.String(allow_none=True)
    serial = fields.String(
        metadata={"description": "the guest finds it as /dev/disk/by-id/virtio-<serial>"}
    )
    created_by = fields.String(allow_none=True)
    created_at = fields.String(allow_none=True)


class VolumeCreate(Schema):
    """addVolume's input."""

    name = fields.String(
        required=True, metadata={**VOLUME_NAME, "description": "also volumes/NAME.qcow2"}
    )
    size = fields.Integer(
        required=True, validate=within(VOLUME_SIZE), metadata={"description": "GiB"}
    )
    image = fields.String(
        metadata={"description": "made from this image in images/ (default: empty)"}
    )
    project = fields.String(
        metadata={"description": "default: your only project (members) or default"}
    )


class VolumeAttach(Schema):
    """The VM to attach a volume to."""

    vm = fields.String(
        required=True, metadata={"description": "a VM of the volume's project, running or not"}
    )


class VolumeGrow(Schema):
    """A volume's new size."""

    size = fields.Integer(
        required=True,
        validate=within(VOLUME_SIZE),
        metadata={"description": "GiB, larger than now (grows only)"},
    )
