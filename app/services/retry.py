"""Retry a failed or interrupted operation (OpenNebula calls it `onevm recover`), or re-check
its target and record what the hypervisor really says (not the recovery of dead workers' operations)."""

import json

from .. import states
from ..errors import InvalidInput
from ..ops import kinds
from ..ops.claims import Target
from ..ops.request import request
from ..repositories import hosts as hosts_repo
from ..repositories import vms as vms_repo
from . import access, hosts, image_import, operations, projects, vms
from .common import db

RECOVERABLE = states.OPERATION_UNSUCCESSFUL


def _input(op):
    """The operation's stored input (never secrets)."""
    return json.loads(op["input"] or "{}")


def _retry_vm_create(op, actor):
    """Create the VM again from the stored input (on the same host, in the same project under
    its name of today, whose quotas it must fit again)."""
    stored = _input(op)
    keys = ("id", "image", "mem", "vcpus", "start", "hostname", "ssh_keys", "disk")
    data = {key: stored[key] for key in keys if key in stored}
    data["host"] = stored.get("host")
    data["project"] = projects.name_of(op["project_id"] or stored.get("project_id"))
    return vms.add(data, actor, wait=False)


def _retryable(op):
    """Whether a retry can repeat the operation exactly (a create's user data is not kept)."""
    return op["kind"] in RETRIES and not (
        op["kind"] == kinds.VM_CREATE.name and _input(op).get("user_data")
    )


RETRIES = {
    kinds.VM_CREATE.name: _retry_vm_create,
    kinds.VM_START.name: lambda op, actor: vms.start(op["target_id"], actor, wait=False),
    kinds.VM_STOP.name: lambda op, actor: vms.stop(
        op["target_id"], actor, wait=False, force=_input(op).get("force", False)
    ),
    kinds.VM_REMOVE.name: lambda op, actor: vms.remove(op["target_id"], actor, wait=False),
    kinds.HOST_REMOVE.name: lambda op, actor: hosts.remove(int(op["target_id"]), actor, wait=False),
    # the same URL and checks again (a fetch that broke off, a server that was down)
    kinds.IMAGE_IMPORT.name: lambda op, actor: image_import.start(
        {**_input(op), "name": op["target_id"]}, actor, wait=False
    ),
}
RECHECKS = {"vm": kinds.VM_RECHECK, "host": kinds.HOST_RECHECK}


def actions(op):
    """Which recover actions an operation offers the viewer: a subset of ('retry', 'recheck')."""
    if op["status"] not in RECOVERABLE or not access.current().may("operations.retry"):
        return ()
    offered = []
    if _retryable(op):
        offered.append("retry")
    if _target_exists(op):
        offered.append("recheck")
    return tuple(offered)


FORM_AGAIN_FIELDS = ("address", "name", "user", "share", "network")


def host_form_again(op):
    """What a host add that did not succeed was given (never its password), to fill the
    add-host form again; None for any other operation."""
    if op["kind"] != kinds.HOST_ADD.name or op["status"] not in RECOVERABLE:
        return None
    stored = _input(op)
    return {key: stored[key] for key in FORM_AGAIN_FIELDS if isinstance(stored.get(key), str)}


def _target_exists(op):
    """Whether the operation's VM or host is still registered."""
    if op["target_type"] == "vm":
        return vms_repo.get(db(), op["target_id"]) is not None
    if op["target_type"] == "host" and op["target_id"]:
        return hosts_repo.get(db(), int(op["target_id"])) is not None
    return False


def retry(op_id, actor):
    """Start the same action again; returns the new operation id."""
    op = operations.get(op_id)  # another project's is not found, before the role is refused
    access.require("operations.retry")
    if "retry" not in actions(op):
        raise InvalidInput(f"operation {op_id} ({op['kind']}, {op['status']}) cannot be retried")
    return RETRIES[op["kind"]](op, actor)


def recheck(op_id, actor):
    """Read the target's real state from its hypervisor and record it; returns the operation id."""
    op = operations.get(op_id)
    access.require("operations.retry")
    if "recheck" not in actions(op):
        raise InvalidInput(f"operation {op_id}'s target no longer exists: nothing to re-check")
    kind = RECHECKS[op["target_type"]]
    target_id = op["target_id"] if op["target_type"] == "vm" else int(op["target_id"])
    target = Target(op["target_type"], target_id, op["target_name"])
    return request(kind, target, actor, {"after": op["id"]})
