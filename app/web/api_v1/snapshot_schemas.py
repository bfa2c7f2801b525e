"""The API's VM snapshot schemas (marshmallow), as app/web/api_v1/schemas.py makes the others:
the name's pattern from app.limits, the states from app.states."""

from marshmallow import Schema, fields

from ... import states
from ...limits import SNAPSHOT_NAME_MAX, SNAPSHOT_NAME_RE

SNAPSHOT_STATES = list(states.SNAPSHOT.values)

SNAPSHOT_NAME = {"pattern": SNAPSHOT_NAME_RE.pattern, "maxLength": SNAPSHOT_NAME_MAX}


class Snapshot(Schema):
    """A VM snapshot as listSnapshots shows it."""

    name = fields.String(required=True, metadata=SNAPSHOT_NAME)
    vm = fields.String(required=True)
    state = fields.String(required=True, metadata={"enum": SNAPSHOT_STATES})
    frozen = fields.Boolean(
        allow_none=True,
        metadata={
            "description": "a running VM's: whether its guest agent froze the file systems;"
            " null when the VM was stopped (nothing to freeze)"
        },
    )
    size = fields.Integer(
        required=True, metadata={"description": "bytes its VM's files held when it was taken"}
    )
    volumes = fields.List(
        fields.String(), required=True, metadata={"description": "the volumes it holds"}
    )
    created_by = fields.String(allow_none=True)
    created_at = fields.String(allow_none=True)


class SnapshotCreate(Schema):
    """snapshotVm's input."""

    name = fields.String(
        required=True,
        metadata={**SNAPSHOT_NAME, "description": "unique among the VM's snapshots"},
    )
