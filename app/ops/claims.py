"""What a kind claims before it runs, and the compare-and-swap that takes it.

Every kind declares one Claim (app/ops/kinds.py); app/ops/request.py takes it in the
transaction that writes the operation row, so a refused claim leaves nothing written. The
runner releases every task an operation holds when it ends.
"""

from dataclasses import dataclass
from typing import NamedTuple

from ..errors import Busy, Conflict, NotFound
from ..repositories import hosts as hosts_repo
from ..repositories import operations as ops_repo
from ..repositories import vms as vms_repo
from ..repositories import volumes as volumes_repo
from ..services.common import busy_message

# How a claim is taken:
ROW = "row"  # the target's row: its task is free and its state one of from_states
HOST_AND_VMS = "host and its VMs"  # a host's row as ROW, and every VM on it: all or nothing
NEW_ROW = "new row"  # the row the request inserts, born with the task (a create, an add)
ONE_ACTIVE = "one active"  # no task column: no other pending or running operation on the target

MODES = (ROW, HOST_AND_VMS, NEW_ROW, ONE_ACTIVE)
REPOSITORIES = {"vms": vms_repo, "hosts": hosts_repo, "volumes": volumes_repo}
LABELS = {"vms": "VM", "hosts": "host", "volumes": "volume"}


class Target(NamedTuple):
    """What an operation is about: its type (vm, host, volume, image, controller), id and
    name."""

    type: str
    id: object
    name: str


@dataclass(frozen=True)
class Claim:
    """What a kind takes before it runs."""

    mode: str
    table: str | None = None  # "vms", "hosts" or "volumes" (None for ONE_ACTIVE)
    task: str | None = None  # the word its target's task column shows while it runs
    from_states: tuple = ()  # the states it may start from; () means any
    sets_state: str | None = None  # the state its target takes with the claim
    each: "Claim | None" = None  # what the work takes of each VM (or host) as it reaches it
    busy_as: str | None = None  # ONE_ACTIVE: how a busy target is described

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown claim mode {self.mode!r}")
        if (self.mode == ONE_ACTIVE) != (self.table is None):
            raise ValueError("a claim names its table unless it is one active operation per target")


def take(conn, claim, target, op_id, kind_name):
    """Take a claim on a Target for operation op_id inside the caller's transaction (which
    must roll back on the error raised): NotFound, Busy naming the holder, or Conflict naming
    the state the target is in."""
    if claim.mode == ONE_ACTIVE:
        _one_active(conn, claim, target, op_id)
        return
    repo = REPOSITORIES[claim.table]
    if claim.mode == NEW_ROW:
        repo.set_task_op(conn, target.id, op_id)
        return
    taken = repo.claim_task(
        conn, target.id, claim.task, op_id, states=claim.from_states, new_state=claim.sets_state
    )
    if not taken:
        raise refusal(claim, kind_name, target.name, repo.get(conn, target.id)) or Busy(
            f"busy: {LABELS[claim.table]} {target.name} changed during the request: try again"
        )
    if claim.mode == HOST_AND_VMS:
        held = vms_repo.claim_on_host(conn, target.id, claim.task, op_id)
        if held is not None:
            raise Busy(
                busy_message("VM", held["id"], held["task"], held["task_op"]), held["task_op"]
            )


def take_each(ctx, conn, target):
    """Take, for a running operation, its kind's claim on one more target it reaches (a
    drain's VM as its move begins, a destroy's host and its VMs)."""
    take(conn, ctx.claim.each, target, ctx.id, ctx.kind)


def refusal(claim, kind_name, name, row):
    """Why this row cannot be claimed now (NotFound, Busy or Conflict), or None when it can."""
    label = LABELS[claim.table]
    if row is None:
        return NotFound(f"{label} {name} not found (removed meanwhile)")
    if row["task"]:
        return Busy(busy_message(label, name, row["task"], row["task_op"]), row["task_op"])
    if claim.from_states and row["state"] not in claim.from_states:
        verb = kind_name.split(".")[1]
        return Conflict(f"{label} {name} is {row['state']}: cannot {verb} it")
    return None


def check(kind, row):
    """Refuse at once a request whose claim cannot be taken from this row (a fast, clear
    answer before costly checks; the compare-and-swap in take still decides)."""
    name = row["name"] if kind.claim.table == "hosts" else row["id"]
    error = refusal(kind.claim, kind.name, name, row)
    if error is not None:
        raise error


def _one_active(conn, claim, target, op_id):
    """Refuse a second active operation on a target that has no task column."""
    others = [op for op in ops_repo.active_for(conn, target.type, target.id) if op["id"] != op_id]
    if not others:
        return
    active = others[0]
    if claim.busy_as:
        message = busy_message(target.type, target.name, claim.busy_as, active["id"])
    else:
        message = f"busy: operation {active['id']} ({active['kind']}) is running"
    raise Busy(message, active["id"])


def release_host_and_vms(conn, host_id, op_id, error):
    """Give back a host (in error, with the reason) and its VMs after a failed removal."""
    for vm in vms_repo.on_host(conn, host_id):
        vms_repo.clear_task(conn, vm["id"], op_id)
    hosts_repo.clear_task(conn, host_id, op_id)
    hosts_repo.update(conn, host_id, state="error", error=error)
