"""Showback: each project's vCPU, memory and disk hours per month, replayed from the
operations' records, on the page, as CSV, and through a real VM's life."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from app import core
from app.db import get_db
from app.repositories import operations as ops_repo
from app.services import metering
from tests.conftest import csrf_token


def record(kind, vm, finished, **data):
    """An operation record as the repository returns it."""
    return {"kind": kind, "target_id": vm, "input": json.dumps(data), "finished_at": finished}


def test_replay_splits_at_month_ends_and_counts_running_and_existing_time():
    records = [
        # web: 2 vCPUs, 2 GiB, 10 GiB of disk, made and started at 22:00 on the 31st of Jan
        record(
            "vm.create",
            "web",
            "2026-01-31T22:00:00Z",
            project="lab",
            project_id=3,
            vcpus=2,
            mem=2048,
            disk=10,
            start=True,
        ),
        record("vm.stop", "web", "2026-02-01T02:00:00Z"),  # ran 2 h in Jan, 2 h in Feb
        record("vm.start", "web", "2026-02-01T03:00:00Z"),
        record("vm.remove", "web", "2026-02-01T04:00:00Z"),  # 1 more hour running
        # db: made stopped in default (no project recorded: older than projects), never run
        record("vm.create", "db", "2026-02-01T00:00:00Z", vcpus=1, mem=1024, disk=4),
        record("vm.start", "ghost", "2026-02-01T00:00:00Z"),  # created before records: skipped
    ]
    until = datetime(2026, 2, 1, 6, tzinfo=UTC)
    assert metering.replay(records, until, {3: "lab"}) == [
        {
            "month": "2026-01",
            "project": "lab",
            "vcpu_hours": 4.0,
            "mem_gib_hours": 4.0,
            "disk_gib_hours": 20.0,
        },
        {
            "month": "2026-02",
            "project": "default",
            "vcpu_hours": 0.0,
            "mem_gib_hours": 0.0,
            "disk_gib_hours": 24.0,
        },
        {
            "month": "2026-02",
            "project": "lab",
            "vcpu_hours": 6.0,
            "mem_gib_hours": 6.0,
            "disk_gib_hours": 40.0,
        },
    ]


def test_a_renamed_project_keeps_its_history():
    records = [
        record(
            "vm.create",
            "v",
            "2026-03-01T00:00:00Z",
            project="old",
            project_id=7,
            vcpus=1,
            mem=1024,
            disk=1,
            start=True,
        )
    ]
    rows = metering.replay(records, datetime(2026, 3, 1, 1, tzinfo=UTC), {7: "new"})
    assert [row["project"] for row in rows] == ["new"]


def test_a_removed_projects_hours_do_not_pass_to_a_new_project_of_its_name():
    records = [
        record("vm.create", "v", "2026-03-01T00:00:00Z", project="lab", project_id=7, disk=1)
    ]
    # lab (id 7) was removed; a new lab (id 9) has none of its hours
    rows = metering.replay(records, datetime(2026, 3, 1, 1, tzinfo=UTC), {9: "lab"})
    assert [row["project"] for row in rows] == ["lab (removed)"]


@pytest.fixture
def config_overrides():
    """Room for the VMs these tests make."""
    return {"MEM_OVERCOMMIT": 100.0}


def test_real_vms_lives_are_metered(ctx, host, image):
    core.addProject({"name": "lab"})
    for vm_id in ("v1", "v2"):
        vm = {"id": vm_id, "image": image, "mem": 1024, "vcpus": 2, "project": "lab"}
        core.addVm({**vm, "start": True})
    core.stopVm("v1", force=True)  # v1 ran for an instant, v2 runs on
    records = ops_repo.vm_power_records(get_db(), "9999")
    assert [r["kind"] for r in records] == ["vm.create", "vm.create", "vm.stop"]
    rows = metering.monthly(until=datetime.now(UTC) + timedelta(hours=1))
    assert {r["project"] for r in rows} == {"lab"}
    # one row, or two when the hour crosses a month's end
    row = {key: sum(r[key] for r in rows) for key in metering.FIELDS[2:]}
    assert row["vcpu_hours"] == pytest.approx(2.0, abs=0.02)  # v2's 2 vCPUs for an hour
    assert row["mem_gib_hours"] == pytest.approx(1.0, abs=0.02)
    assert row["disk_gib_hours"] == pytest.approx(2.0, abs=0.02)  # two 1 GiB disks


def test_usage_page_and_csv(app, admin_client, host, image):
    with app.app_context():
        core.addProject({"name": "lab"})
        core.addVm({"id": "v1", "image": image, "mem": 64, "project": "lab", "start": True})
    page = admin_client.get("/projects/usage").get_data(as_text=True)
    assert 'data-project="lab"' in page and "vCPU hours per project and month" in page
    answer = admin_client.get("/projects/usage.csv")
    assert answer.mimetype == "text/csv"
    lines = answer.get_data(as_text=True).splitlines()
    assert lines[0] == "month,project,vcpu_hours,mem_gib_hours,disk_gib_hours"
    assert lines[1].split(",")[1] == "lab"
    token = csrf_token(admin_client, "/projects/")
    taken = admin_client.post(
        "/projects/", data={"name": "usage", "csrf_token": token}, follow_redirects=True
    )
    assert "project name &#39;usage&#39; is reserved" in taken.get_data(as_text=True)
