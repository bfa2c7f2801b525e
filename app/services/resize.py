"""Resizing a VM as callers see it: memory and vCPUs of a stopped VM (its host's room checked
again), and its disk, grown while stopped or running. Disks never shrink."""

from flask import current_app

from ..db import transaction
from ..errors import Conflict, InvalidInput
from ..extensions import adapters
from ..limits import MEM, VCPUS, VOLUME_SIZE
from ..ops import claims, kinds
from ..ops.launch import launch
from ..ops.request import record
from ..placement import choose_host
from ..repositories import hosts as hosts_repo
from ..repositories import projects as projects_repo
from ..repositories import vms as vms_repo
from ..states import RUNNING
from . import projects, snapshots, validate, vms
from .common import db
from .volume_work import check_free_space

FIELDS = ("mem", "vcpus", "disk")


def _changes(row, data):
    """The clean changes resizeVm asks for (only those that differ from the VM's now)."""
    validate.require_dict(data, "resize")
    validate.refuse_unknown(data, FIELDS, "resize")
    asked = {
        "mem": validate.within(data, MEM, required=False),
        "vcpus": validate.within(data, VCPUS, required=False),
        "disk": validate.integer(
            data, "disk", required=False, minimum=VOLUME_SIZE.minimum, maximum=VOLUME_SIZE.maximum
        ),
    }
    disk = asked["disk"]
    if disk is not None and disk < (row["disk"] or 0):
        raise InvalidInput(
            f"the disk of {row['id']} is {row['disk']} GiB: it can only grow (asked {disk} GiB)"
        )
    changes = {key: value for key, value in asked.items() if value not in (None, row[key])}
    if not changes:
        raise InvalidInput(
            "nothing to resize: give a mem, vcpus or disk other than the VM's"
            f" ({row['mem']} MiB, {row['vcpus']} vCPUs, {row['disk']} GiB)"
        )
    if row["state"] == RUNNING and ({"mem", "vcpus"} & set(changes)):
        raise Conflict(f"VM {row['id']} is running: stop it to change its memory or vCPUs")
    return changes


def _check_host_room(conn, row, changes):
    """Refuse more memory or vCPUs than the VM's host has room for (placement's own rule,
    the VM's current share counted as free)."""
    mem, vcpus = changes.get("mem", row["mem"]), changes.get("vcpus", row["vcpus"])
    if mem <= row["mem"] and vcpus <= row["vcpus"]:
        return
    host = dict(hosts_repo.get(conn, row["host"]))
    host["mem_allocated"] = (host.get("mem_allocated") or 0) - row["mem"]
    host["vcpus_allocated"] = (host.get("vcpus_allocated") or 0) - row["vcpus"]
    config = current_app.config
    choose_host(
        [host],
        mem,
        vcpus=vcpus,
        policy=config["PLACEMENT"],
        overcommit=config["MEM_OVERCOMMIT"],
        cpu_overcommit=config["CPU_OVERCOMMIT"],
        requested=host["id"],
    )


def resize(vm_id, data, actor, wait):
    """Change a VM's memory and vCPUs (stopped) and grow its disk; returns the operation id.
    The new sizes are the row's from the request on, so the project's quota counts them."""
    row = vms.get(vm_id)
    changes = _changes(row, data)
    claims.check(kinds.VM_RESIZE, row)
    if "disk" in changes:
        snapshots.refuse_growth(row["id"], "its disk")
        check_free_space(adapters().storage, changes["disk"] - (row["disk"] or 0), "the disk")
    conn = db()
    with transaction(conn):  # the quota's count, the host's room and the claim: one lock
        now = vms_repo.get(conn, row["id"])
        if now is None or (now["mem"], now["vcpus"], now["disk"]) != (
            row["mem"],
            row["vcpus"],
            row["disk"],
        ):
            raise Conflict(f"VM {row['id']} changed during the request: try again")
        need = {
            key: changes[key] - (row[key] or 0)
            for key in ("mem", "vcpus", "disk")
            if key in changes and changes[key] > (row[key] or 0)
        }
        projects.check_room(conn, projects_repo.get(conn, row["project_id"]), need, "the resize")
        _check_host_room(conn, row, changes)
        before = {"mem": row["mem"], "vcpus": row["vcpus"], "disk": row["disk"]}
        after = {**before, **changes}
        vms_repo.set_resources(conn, row["id"], after["mem"], after["vcpus"])
        vms_repo.set_disk_size(conn, row["id"], after["disk"])
        op_id = record(conn, kinds.VM_RESIZE, row, actor, {"changes": changes, "before": before})
    return launch(op_id, wait)
