"""Controller use cases: initialise and destroy the IaaS."""

from ..db import transaction
from ..errors import Busy
from ..ops import kinds
from ..ops.launch import launch
from ..repositories import operations as ops_repo
from .common import db, new_operation


def _start(kind, actor, wait, input_data=None):
    """Write a controller operation row (one at a time) and launch it."""
    conn = db()
    with transaction(conn):
        active = ops_repo.active_for(conn, "controller", "controller")
        if active:
            raise Busy(
                f"busy: operation {active[0]['id']} ({active[0]['kind']}) is running",
                active[0]["id"],
            )
        op_id = new_operation(conn, kind, "controller", "controller", actor, input_data)
    return launch(op_id, wait)


def init(actor, wait):
    """Create the repository and run iaas_init.yaml."""
    return _start(kinds.CONTROLLER_INIT, actor, wait)


def destroy(actor, wait, purge=False):
    """Remove every VM and host, then run iaas_destroy.yaml."""
    return _start(kinds.CONTROLLER_DESTROY, actor, wait, {"purge": bool(purge)})
