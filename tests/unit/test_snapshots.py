"""VM snapshots through the Python API, on a stopped VM (qemu-img on real files in the
repository): taken with the volumes attached, reverted (what was written since is gone),
deleted (the VM keeps its data); refusals that change nothing; quotas that count snapshots;
a VM's removal forgetting them. (libvirt's test driver has no QEMU monitor: a running VM's
snapshot fails here, which shows its undo; the live paths are the integration tier's.)"""

import os
import subprocess

import pytest

from app import core
from app.adapters import qcow2_header
from app.db import get_db
from tests.factories import gen_user, gen_vm


@pytest.fixture
def config_overrides():
    """Room on the test driver's one small host for every VM these tests make."""
    return {"CPU_OVERCOMMIT": 100.0, "MEM_OVERCOMMIT": 100.0}


def storage(app):
    return app.extensions["nube"].storage


def write(path, pattern, offset=0):
    """Write 64 KiB of one byte into a qcow2 file (its backing chain as its header says)."""
    subprocess.run(
        ["qemu-io", "-f", "qcow2", "-c", f"write -P {pattern} {offset} 64k", str(path)],
        check=True,
        capture_output=True,
    )


def holds(path, pattern, offset=0):
    """Whether 64 KiB at offset all hold one byte."""
    out = subprocess.run(
        ["qemu-io", "-f", "qcow2", "-c", f"read -P {pattern} {offset} 64k", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return "Pattern verification failed" not in out.stdout + out.stderr


def tags(path):
    """The internal snapshots a qcow2 file holds, by tag."""
    return [s["name"] for s in qcow2_header.read(path).get("snapshots", ())]


def state(app):
    """What a refused request must leave as it was: rows, tags, operations."""
    conn = get_db()
    return (
        [tuple(r) for r in conn.execute("SELECT * FROM snapshots ORDER BY id")],
        [tuple(r) for r in conn.execute("SELECT * FROM snapshot_volumes ORDER BY volume")],
        [tuple(r) for r in conn.execute("SELECT id, disk, task FROM vms ORDER BY id")],
        [tuple(r) for r in conn.execute("SELECT id, size, vm_id, task FROM volumes")],
        conn.execute("SELECT COUNT(*) FROM operations").fetchone()[0],
        tags(storage(app).disk_path("vm1")),
    )


def test_snapshot_revert_and_delete_a_stopped_vm_with_its_volume(ctx, host, image):
    gen_vm(ctx, image, "vm1")
    core.addVolume({"name": "data1", "size": 1})
    core.attachVolume("data1", "vm1")
    disk, volume = storage(ctx).disk_path("vm1"), storage(ctx).volume_path("data1")
    write(disk, "0xaa")
    write(volume, "0x11")

    taken = core.snapshotVm("vm1", "before")
    assert taken["name"] == "before" and taken["state"] == "ready"
    assert taken["frozen"] is None  # a stopped VM needs no freeze
    assert taken["volumes"] == ["data1"] and taken["size"] > 0
    assert tags(disk) == ["nube-before"] and tags(volume) == ["nube-before"]

    write(disk, "0xbb")
    write(volume, "0x22")
    reverted = core.revertSnapshot("vm1", "before")
    assert reverted["state"] == "ready"
    assert holds(disk, "0xaa") and holds(volume, "0x11")

    write(disk, "0xcc")
    core.removeSnapshot("vm1", "before")
    assert core.listSnapshots("vm1") == []
    assert tags(disk) == [] and tags(volume) == []
    assert holds(disk, "0xcc")  # deleting a snapshot leaves the VM's data as it is
    # the VM is whole: its header is still one Nube vouches for, and it starts
    core.startVm("vm1")


def test_snapshots_are_listed_oldest_first_with_what_they_hold(ctx, host, image):
    gen_vm(ctx, image, "vm1")
    write(storage(ctx).disk_path("vm1"), "0x77")
    core.snapshotVm("vm1", "one")
    core.addVolume({"name": "data1", "size": 1})
    core.attachVolume("data1", "vm1")
    core.snapshotVm("vm1", "2")  # digits alone: a name, never qemu-img's snapshot id
    listed = core.listSnapshots("vm1")
    assert [(s["name"], s["volumes"], s["created_by"]) for s in listed] == [
        ("one", [], "api"),
        ("2", ["data1"], "api"),
    ]
    write(storage(ctx).disk_path("vm1"), "0x33")
    core.revertSnapshot("vm1", "one")
    assert holds(storage(ctx).disk_path("vm1"), "0x77")
    # the volume attached after "one" keeps its data, and "2" is still there to go back to
    assert [s["name"] for s in core.listSnapshots("vm1")] == ["one", "2"]


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: core.snapshotVm("vm1", "bad name"), core.InvalidInput, "snapshot name must"),
        (lambda: core.snapshotVm("vm1", "x" * 41), core.InvalidInput, "snapshot name must"),
        (lambda: core.snapshotVm("vm1", "s1"), core.Conflict, "already has a snapshot s1"),
        (lambda: core.snapshotVm("nope", "s2"), core.NotFound, "nope"),
        (lambda: core.revertSnapshot("vm1", "s9"), core.NotFound, "has no snapshot s9"),
        (lambda: core.removeSnapshot("vm1", "s9"), core.NotFound, "has no snapshot s9"),
        (lambda: core.detachVolume("data1"), core.Conflict, "in snapshot vm1/s1: remove"),
        (lambda: core.growVolume("data1", 2), core.Conflict, "in snapshot vm1/s1: remove"),
        (lambda: core.resizeVm("vm1", {"disk": 2}), core.Conflict, "has snapshots \\(s1\\)"),
    ],
)
def test_refusals_change_nothing(ctx, host, image, call, error, message):
    gen_vm(ctx, image, "vm1")
    core.addVolume({"name": "data1", "size": 1})
    core.attachVolume("data1", "vm1")
    core.snapshotVm("vm1", "s1")
    before = state(ctx)
    with pytest.raises(error, match=message):
        call()
    assert state(ctx) == before


def test_a_running_vm_is_not_reverted(ctx, host, image):
    gen_vm(ctx, image, "vm1")
    core.snapshotVm("vm1", "s1")
    core.startVm("vm1")
    before = state(ctx)
    with pytest.raises(core.Conflict, match="running"):
        core.revertSnapshot("vm1", "s1")
    assert state(ctx) == before


def test_a_vm_keeps_at_most_so_many_snapshots(ctx, host, image, monkeypatch):
    monkeypatch.setattr("app.services.snapshots.SNAPSHOTS_PER_VM", 2)
    gen_vm(ctx, image, "vm1")
    core.snapshotVm("vm1", "a")
    core.snapshotVm("vm1", "b")
    with pytest.raises(core.Conflict, match="has 2 snapshots, the most one VM keeps"):
        core.snapshotVm("vm1", "c")


def test_a_failed_live_snapshot_leaves_no_row_and_no_tag(ctx, host, image):
    # the test driver has no QEMU monitor: the live snapshot fails, and its undo runs
    gen_vm(ctx, image, "vm1", start=True)
    with pytest.raises(core.OperationFailed):
        core.snapshotVm("vm1", "live")
    assert core.listSnapshots("vm1") == []
    assert tags(storage(ctx).disk_path("vm1")) == []
    [vm] = core.listVms("id = vm1")
    assert vm["task"] is None


def test_quotas_count_snapshots(ctx, host, image):
    core.addProject({"name": "lab", "quota": {"disk": 3}})
    gen_vm(ctx, image, "vm1", project="lab")  # a 1 GiB disk
    core.addVolume({"name": "data1", "size": 1, "project": "lab"})
    assert core.listProjects()[1]["usage"]["disk"] == 2
    # what a snapshot holds counts in whole GiB, rounded up: a few KiB take one
    core.snapshotVm("vm1", "s1")
    assert core.listProjects()[1]["usage"]["disk"] == 3
    with pytest.raises(core.QuotaExceeded, match="the snapshot needs 1"):
        core.snapshotVm("vm1", "s2")
    core.removeSnapshot("vm1", "s1")
    assert core.listProjects()[1]["usage"]["disk"] == 2


def test_removing_a_vm_forgets_its_snapshots_and_cleans_kept_volumes(ctx, host, image):
    gen_vm(ctx, image, "vm1")
    core.addVolume({"name": "keep1", "size": 1})
    core.attachVolume("keep1", "vm1")
    core.snapshotVm("vm1", "s1")
    core.removeVm("vm1")
    assert get_db().execute("SELECT COUNT(*) FROM snapshots").fetchone()[0] == 0
    assert tags(storage(ctx).volume_path("keep1")) == []
    # the kept volume is free: another VM takes it, and may snapshot it under the same name
    gen_vm(ctx, image, "vm2")
    core.attachVolume("keep1", "vm2")
    core.snapshotVm("vm2", "s1")


def test_a_file_that_lost_its_snapshot_is_not_half_reverted(ctx, host, image):
    gen_vm(ctx, image, "vm1")
    core.addVolume({"name": "data1", "size": 1})
    core.attachVolume("data1", "vm1")
    core.snapshotVm("vm1", "s1")
    disk, volume = storage(ctx).disk_path("vm1"), storage(ctx).volume_path("data1")
    write(disk, "0x44")
    subprocess.run(["qemu-img", "snapshot", "-d", "nube-s1", str(volume)], check=True)
    with pytest.raises(core.OperationFailed, match="no longer holds snapshot s1: nothing"):
        core.revertSnapshot("vm1", "s1")
    assert holds(disk, "0x44")  # the disk was not reverted alone
    # deleting it still works: the files that hold it lose it
    core.removeSnapshot("vm1", "s1")
    assert tags(disk) == []


def test_a_member_sees_only_their_projects_snapshots(ctx, host, image):
    core.addProject({"name": "lab"})
    core.addProject({"name": "other"})
    gen_vm(ctx, image, "vm1", project="other")
    core.snapshotVm("vm1", "s1")
    core.addVm({"id": "vm2", "image": image, "mem": 64, "project": "lab"})
    gen_user(ctx, "alice", role="member")
    core.addMember("lab", "alice")
    with core.acting_as("alice"):
        with pytest.raises(core.NotFound):
            core.listSnapshots("vm1")
        with pytest.raises(core.NotFound):
            core.removeSnapshot("vm1", "s1")
        core.snapshotVm("vm2", "mine")
        assert [s["name"] for s in core.listSnapshots("vm2")] == ["mine"]


def test_a_stale_tag_left_in_a_kept_volume_is_dropped_by_the_next_snapshot(ctx, host, image):
    gen_vm(ctx, image, "vm1")
    core.addVolume({"name": "data1", "size": 1})
    volume = storage(ctx).volume_path("data1")
    subprocess.run(["qemu-img", "snapshot", "-c", "nube-s1", str(volume)], check=True)
    core.attachVolume("data1", "vm1")
    core.snapshotVm("vm1", "s1")
    assert tags(volume) == ["nube-s1"]  # one, Nube's own
    log = "\n".join(r[0] for r in get_db().execute("SELECT message FROM operation_log"))
    assert "vdb still held a stale nube-s1: deleting it" in log


def test_a_file_a_host_left_to_root_is_given_back_to_nobody_before_qemu_img(ctx, host, image):
    # a lab host's libvirt restores a migrated domain's files to root when it stops; qemu-img
    # still runs as nobody, never as root, on a file a host may have rewritten
    gen_vm(ctx, image, "vm1")
    disk = storage(ctx).disk_path("vm1")
    os.chown(disk, 0, 0)
    core.snapshotVm("vm1", "s1")
    assert tags(disk) == ["nube-s1"]
    assert (os.stat(disk).st_uid, os.stat(disk).st_gid) == (65534, 65534)
    log = "\n".join(r[0] for r in get_db().execute("SELECT message FROM operation_log"))
    assert "setpriv --reuid=65534 --regid=65534" in log
