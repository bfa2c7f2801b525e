"""Showback, as OpenNebula's: what each project used, month by month, replayed from the
operations' records. A VM's vCPUs and memory count while it runs (from a succeeded start, or a
creation that started it, to a succeeded stop or removal); its disk counts while it exists.
Sizes come from the creation's input. Power changes made outside Nube (a guest that shuts
itself down) are not operations, so they are not seen here."""

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..db import stamp
from ..repositories import operations as ops_repo
from ..repositories import projects as projects_repo
from . import access
from .common import db

FIELDS = ("month", "project", "vcpu_hours", "mem_gib_hours", "disk_gib_hours")
DEFAULT_PROJECT = "default"  # creations recorded before projects existed


@dataclass
class _Vm:
    """One VM's replay state."""

    project: str
    vcpus: int
    mem: int
    disk: int
    born: datetime
    running_since: datetime | None = None


@dataclass
class _Totals:
    """Sums per (month, project)."""

    sums: dict = field(default_factory=dict)

    def add(self, project, start, end, **rates):
        """Charge rates (per hour) over [start, end), split at month boundaries."""
        for month, hours in _month_slices(start, end):
            row = self.sums.setdefault((month, project), dict.fromkeys(FIELDS[2:], 0.0))
            for key, rate in rates.items():
                row[key] += rate * hours


def _parse(text):
    """A stored ISO time as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _month_slices(start, end):
    """(YYYY-MM, hours) pieces of [start, end), one per calendar month (UTC)."""
    while start < end:
        nxt = datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)
        piece_end = min(end, nxt)
        yield start.strftime("%Y-%m"), (piece_end - start).total_seconds() / 3600
        start = piece_end


def _project_name(data, names):
    """The name a creation's hours are shown under: its project's of today; a removed
    project's old name marked removed (a new project of that name does not inherit its
    hours); default for creations from before projects."""
    project_id = data.get("project_id")
    if project_id is None:
        return DEFAULT_PROJECT
    if project_id in names:
        return names[project_id]
    return f"{data.get('project') or project_id} (removed)"


def _created(record, names):
    """A VM's replay state from its creation's record; names maps project ids to their
    names now (a renamed project keeps its history)."""
    data = json.loads(record["input"] or "{}")
    born = _parse(record["finished_at"])
    return _Vm(
        project=_project_name(data, names),
        vcpus=int(data.get("vcpus") or 1),
        mem=int(data.get("mem") or 0),
        disk=int(data.get("disk") or 0),
        born=born,
        running_since=born if data.get("start") else None,
    )


def _stop(totals, vm, at):
    """Charge a VM's running time up to at."""
    if vm.running_since is not None:
        totals.add(
            vm.project, vm.running_since, at, vcpu_hours=vm.vcpus, mem_gib_hours=vm.mem / 1024
        )
        vm.running_since = None


def replay(records, until, names=None):
    """[{month, project, vcpu_hours, mem_gib_hours, disk_gib_hours}] from records (oldest
    first), open intervals closed at until; sorted by month, then project."""
    names = names or {}
    totals, alive = _Totals(), {}
    for record in records:
        vm_id, at = record["target_id"], _parse(record["finished_at"])
        if record["kind"] == "vm.create":
            alive[vm_id] = _created(record, names)
            continue
        vm = alive.get(vm_id)
        if vm is None:
            continue  # a VM created before its records were kept
        if record["kind"] == "vm.start" and vm.running_since is None:
            vm.running_since = at
        elif record["kind"] == "vm.stop":
            _stop(totals, vm, at)
        elif record["kind"] == "vm.remove":
            _stop(totals, vm, at)
            totals.add(vm.project, vm.born, at, disk_gib_hours=vm.disk)
            del alive[vm_id]
    for vm in alive.values():
        _stop(totals, vm, until)
        totals.add(vm.project, vm.born, until, disk_gib_hours=vm.disk)
    return [
        {"month": month, "project": project, **{k: round(v, 2) for k, v in sums.items()}}
        for (month, project), sums in sorted(totals.sums.items())
    ]


def monthly(until=None):
    """What each project the viewer sees used per month, up to until (default: now)."""
    until = until or datetime.now(UTC)
    conn = db()
    names = {row["id"]: row["name"] for row in projects_repo.all_projects(conn)}
    rows = replay(ops_repo.vm_power_records(conn, stamp(until)), until, names)
    visible = access.visible_projects()
    if visible is not None:
        mine = {names[project_id] for project_id in visible}
        rows = [row for row in rows if row["project"] in mine]
    return rows


def as_csv(rows):
    """Rows as CSV text with a header line."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
