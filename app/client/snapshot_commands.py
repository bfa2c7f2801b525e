"""The VM snapshot sub-commands: one function each, taking the Session and returning the exit
code; a revert and a deletion are confirmed first (--yes, or y typed at the prompt)."""

from . import inputs, output
from .calls import act, list_items, part, show_item

SNAPSHOT_COLUMNS = [
    ("name", "NAME"),
    ("state", "STATE"),
    ("frozen", "FROZEN"),
    ("size", "SIZE"),
    ("volumes", "VOLUMES"),
    ("created_at", "CREATED"),
]
# frozen is null for a snapshot of a stopped VM: there was nothing to freeze
TAKEN_STOPPED = "stopped VM"


def _path(vm, name="", action=""):
    """A VM's snapshots under /api/v1, one of them, or one's action."""
    path = f"/vms/{part(vm)}/snapshots"
    return path + (f"/{part(name)}" if name else "") + (f"/{action}" if action else "")


def _readable(snapshot):
    """A snapshot with its size in binary units and frozen in words."""
    frozen = snapshot.get("frozen")
    return {
        **snapshot,
        "size": output.size(snapshot.get("size")),
        "frozen": TAKEN_STOPPED if frozen is None else frozen,
    }


def vm_snapshot(session):
    """nube vm snapshot VM NAME: its disk and attached volumes, together."""
    args = session.args
    return act(session, "POST", _path(args.vm), {"name": args.name})


def vm_snapshots(session):
    """nube vm snapshots VM: a table, oldest first."""
    return list_items(session, _path(session.args.vm), SNAPSHOT_COLUMNS, shown=_readable)


def vm_snapshot_show(session):
    """nube vm snapshot-show VM NAME"""
    args = session.args
    return show_item(session, _path(args.vm, args.name), shown=_readable)


def vm_revert(session):
    """nube vm revert VM NAME [--yes]: the stopped VM's disk and volumes back to the snapshot."""
    args = session.args
    inputs.confirm(
        f"Revert VM {args.vm} to snapshot {args.name}? Everything written to its disk and"
        " volumes since the snapshot is lost.",
        args.yes,
    )
    return act(session, "POST", _path(args.vm, args.name, "revert"), {})


def vm_snapshot_remove(session):
    """nube vm snapshot-remove VM NAME [--yes]: the VM keeps its data."""
    args = session.args
    inputs.confirm(
        f"Delete snapshot {args.name} of VM {args.vm}? The VM keeps its data, but it can no"
        " longer go back to this snapshot.",
        args.yes,
    )
    return act(session, "DELETE", _path(args.vm, args.name))
