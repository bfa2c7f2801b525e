"""The API's schema of saving a VM as an image (marshmallow), beside schemas.py: the name
pattern from app.adapters.storage, the snapshot's from the service."""

from marshmallow import Schema, fields

from ...adapters.storage import IMAGE_NAME_RE
from ...limits import SNAPSHOT_NAME_RE


class VmSaveImage(Schema):
    """saveImage's input: the image's file name and, optionally, the snapshot to save."""

    name = fields.String(
        required=True,
        metadata={"pattern": IMAGE_NAME_RE, "description": "images/NAME, ending in .qcow2 or .img"},
    )
    snapshot = fields.String(
        allow_none=True,
        metadata={
            "pattern": SNAPSHOT_NAME_RE.pattern,
            "description": "one of the VM's snapshots; default: its disk as it is",
        },
    )
