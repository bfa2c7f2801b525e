"""Controller use cases: initialise and destroy the IaaS."""

from ..ops import kinds
from ..ops.request import request
from . import access


def init(actor, wait):
    """Create the repository and run iaas_init.yaml."""
    access.require("controller")
    return request(kinds.CONTROLLER_INIT, "controller", actor, None, wait)


def destroy(actor, wait, purge=False):
    """Remove every VM and host, then run iaas_destroy.yaml."""
    access.require("controller")
    return request(kinds.CONTROLLER_DESTROY, "controller", actor, {"purge": bool(purge)}, wait)
