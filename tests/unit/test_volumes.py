"""Volumes through the Python API: made empty or from an image in volumes/, attached into a
stopped VM's definition and detached from it, grown, removed; refusals that change nothing; a
volume attached to one VM at most, even when two attaches arrive at once; quotas that count
volumes; a VM's removal keeping its volumes unless asked; the monitor saying which file is
missing. (libvirt's test driver cannot hot-plug into a running domain: the live paths are
the integration tier's; here a failing hot-plug shows its undo.)"""

import json
import subprocess
import threading
import xml.etree.ElementTree as ET

import pytest

from app import core
from app.db import get_db
from app.services import monitor
from tests.factories import gen_vm

GIB = 1 << 30


@pytest.fixture
def config_overrides():
    """Room on the test driver's one small host for every VM these tests make."""
    return {"CPU_OVERCOMMIT": 100.0, "MEM_OVERCOMMIT": 100.0}


def storage(app):
    return app.extensions["nube"].storage


def header(path):
    """qemu-img's reading of a file's header."""
    out = subprocess.run(
        ["qemu-img", "info", "--output=json", "-U", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def definition(app, vm_id):
    """The persistent definition of a VM's domain on its host, parsed."""
    [vm] = core.listVms(f"id = {vm_id}")
    [host] = [h for h in core.listHosts() if h["id"] == vm["host"]]
    return ET.fromstring(app.extensions["nube"].hypervisor.definition(host, vm_id))


def volume_disks(app, vm_id):
    """{target: (source file, serial)} of the volumes in a VM's definition (vda is its disk)."""
    disks = {}
    for disk in definition(app, vm_id).findall("devices/disk[@device='disk']"):
        target = disk.find("target").get("dev")
        if target != "vda":
            disks[target] = (disk.find("source").get("file"), disk.findtext("serial"))
    return disks


def snapshot(app):
    """What a refused request must leave as it was: rows, files, operations."""
    conn = get_db()
    return (
        [tuple(r) for r in conn.execute("SELECT * FROM volumes ORDER BY id")],
        [tuple(r) for r in conn.execute("SELECT id, mem, vcpus, disk, task FROM vms")],
        conn.execute("SELECT COUNT(*) FROM operations").fetchone()[0],
        sorted(p.name for p in storage(app).volumes_dir.glob("*")),
    )


def test_a_volume_is_made_empty_or_from_an_image(ctx, host, image):
    empty = core.addVolume({"name": "data1", "size": 1})
    assert empty == {
        "name": "data1",
        "size": 1,
        "format": "qcow2",
        "image": None,
        "vm": None,
        "target": None,
        "state": "available",
        "task": None,
        "project": "default",
    }
    info = header(storage(ctx).volumes_dir / "data1.qcow2")
    assert info["format"] == "qcow2" and info["virtual-size"] == GIB
    assert "backing-filename" not in info

    based = core.addVolume({"name": "data2", "size": 2, "image": image})
    assert based["image"] == image and based["size"] == 2
    info = header(storage(ctx).volumes_dir / "data2.qcow2")
    assert info["virtual-size"] == 2 * GIB
    assert info["backing-filename"] == f"../images/{image}"  # an overlay, as VM disks are
    assert [v["name"] for v in core.listVolumes("size > 1")] == ["data2"]
    assert [v["name"] for v in core.listVolumes("image IS NULL")] == ["data1"]


@pytest.mark.parametrize(
    "fields, error, message",
    [
        ({"name": "bad name", "size": 1}, core.InvalidInput, "volume name must be"),
        ({"name": "x" * 21, "size": 1}, core.InvalidInput, "volume name must be"),
        ({"name": "v1", "size": 0}, core.InvalidInput, "size must be at least 1"),
        ({"name": "v1", "size": "big"}, core.InvalidInput, "size must be a whole number"),
        ({"name": "v1", "size": 1, "colour": "red"}, core.InvalidInput, "colour"),
        ({"name": "v1", "size": 1, "image": "nope.qcow2"}, core.NotFound, "nope.qcow2"),
        ({"name": "v1", "size": 60_000}, core.Conflict, "the repository has"),
        ({"name": "v1", "size": 1, "project": "elsewhere"}, core.NotFound, "elsewhere"),
    ],
)
def test_bad_volumes_are_refused_and_change_nothing(ctx, host, fields, error, message):
    before = snapshot(ctx)
    with pytest.raises(error, match=message):
        core.addVolume(fields)
    assert snapshot(ctx) == before


def test_a_name_taken_by_a_volume_or_a_file_is_refused(ctx, host):
    core.addVolume({"name": "data1", "size": 1})
    (storage(ctx).volumes_dir / "stray.qcow2").write_bytes(b"left by someone")
    before = snapshot(ctx)
    with pytest.raises(core.Conflict, match="a volume named data1 already exists"):
        core.addVolume({"name": "data1", "size": 1})
    with pytest.raises(core.Conflict, match=r"volumes/stray.qcow2 already exists"):
        core.addVolume({"name": "stray", "size": 1})
    assert snapshot(ctx) == before
    assert (storage(ctx).volumes_dir / "stray.qcow2").read_bytes() == b"left by someone"


def test_attach_and_detach_a_stopped_vm_through_its_definition(ctx, host, image):
    gen_vm(ctx, image, "vm1")
    core.addVolume({"name": "data1", "size": 1})
    core.addVolume({"name": "logs", "size": 1, "image": image})
    attached = core.attachVolume("data1", "vm1")
    assert (attached["vm"], attached["target"], attached["state"]) == ("vm1", "vdb", "in-use")
    core.attachVolume("logs", "vm1")
    assert volume_disks(ctx, "vm1") == {
        "vdb": ("/mnt/iaas/volumes/data1.qcow2", "data1"),
        "vdc": ("/mnt/iaas/volumes/logs.qcow2", "logs"),
    }
    # the whole backing chain is named: libvirt never reads it from the volume's header
    [logs] = [
        d for d in definition(ctx, "vm1").findall("devices/disk") if d.findtext("serial") == "logs"
    ]
    assert logs.find("backingStore/source").get("file") == f"/mnt/iaas/images/{image}"
    # each volume at the PCI slot its target fixes: where a hot-plug on another host put it
    slots = {
        d.find("target").get("dev"): d.find("address").get("slot")
        for d in definition(ctx, "vm1").findall("devices/disk")
        if d.findtext("serial")
    }
    assert slots == {"vdb": "0x08", "vdc": "0x09"}

    detached = core.detachVolume("data1")
    assert (detached["vm"], detached["target"], detached["state"]) == (None, None, "available")
    assert volume_disks(ctx, "vm1") == {"vdc": ("/mnt/iaas/volumes/logs.qcow2", "logs")}
    # the freed target is taken again first
    core.attachVolume("data1", "vm1")
    assert volume_disks(ctx, "vm1")["vdb"] == ("/mnt/iaas/volumes/data1.qcow2", "data1")


def test_refusals_on_volumes_change_nothing(ctx, host, image):
    gen_vm(ctx, image, "vm1")
    gen_vm(ctx, image, "vm2")
    core.addVolume({"name": "data1", "size": 2})
    core.attachVolume("data1", "vm1")
    core.addVolume({"name": "spare", "size": 1})
    before = snapshot(ctx)
    refusals = [
        (lambda: core.attachVolume("data1", "vm2"), core.Conflict, "attached to VM vm1"),
        (lambda: core.removeVolume("data1"), core.Conflict, "attached to VM vm1: detach it"),
        (lambda: core.growVolume("data1", 1), core.InvalidInput, "it can only grow"),
        (lambda: core.growVolume("data1", 2), core.InvalidInput, "it can only grow"),
        (lambda: core.growVolume("data1", 60_000), core.Conflict, "the repository has"),
        (lambda: core.detachVolume("spare"), core.Conflict, "not attached to any VM"),
        (lambda: core.attachVolume("spare", "nope"), core.NotFound, "VM nope not found"),
        (lambda: core.attachVolume("nope", "vm1"), core.NotFound, "volume nope not found"),
        (lambda: core.resizeVm("vm1", {"disk": 1}), core.InvalidInput, "nothing to resize"),
        (lambda: core.resizeVm("vm1", {}), core.InvalidInput, "nothing to resize"),
        (lambda: core.resizeVm("vm1", {"mem": 8}), core.InvalidInput, "mem must be at least"),
    ]
    for call, error, message in refusals:
        with pytest.raises(error, match=message):
            call()
        assert snapshot(ctx) == before, message


def test_two_attaches_at_once_never_both_succeed(app, host, image):
    for vm_id in ("vm1", "vm2"):
        gen_vm(app, image, vm_id)
    with app.app_context():
        core.addVolume({"name": "data1", "size": 1})
    start = threading.Barrier(2)
    outcome = {}

    def attach(vm_id):
        with app.app_context():
            start.wait()
            try:
                outcome[vm_id] = core.attachVolume("data1", vm_id)["vm"]
            except (core.Busy, core.Conflict) as refusal:
                outcome[vm_id] = refusal

    threads = [threading.Thread(target=attach, args=(vm_id,)) for vm_id in ("vm1", "vm2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    won = [vm_id for vm_id, result in outcome.items() if result == vm_id]
    assert len(won) == 1, outcome
    [lost] = {"vm1", "vm2"} - set(won)
    assert isinstance(outcome[lost], core.Busy | core.Conflict)
    with app.app_context():
        [volume] = core.listVolumes()
        assert volume["vm"] == won[0]
        assert list(volume_disks(app, won[0])) == ["vdb"]
        assert volume_disks(app, lost) == {}


def test_a_hot_plug_that_fails_leaves_the_volume_available(ctx, host, image):
    """The test driver cannot hot-plug: the attach fails, and its undo puts the row back."""
    gen_vm(ctx, image, "vm1", start=True)
    core.addVolume({"name": "data1", "size": 1})
    with pytest.raises(core.OperationFailed):
        core.attachVolume("data1", "vm1")
    [volume] = core.listVolumes()
    assert (volume["vm"], volume["state"], volume["task"]) == (None, "available", None)
    assert volume_disks(ctx, "vm1") == {}
    assert core.listVms("id = vm1")[0]["task"] is None


def test_an_altered_volume_header_is_never_given_to_a_host(ctx, host, image):
    gen_vm(ctx, image, "vm1")
    core.addVolume({"name": "data1", "size": 1})
    path = storage(ctx).volumes_dir / "data1.qcow2"
    subprocess.run(
        ["qemu-img", "rebase", "-u", "-f", "qcow2", "-F", "raw", "-b", "/etc/hostname", path],
        check=True,
    )
    with pytest.raises(core.OperationFailed, match="names backing file '/etc/hostname'"):
        core.attachVolume("data1", "vm1")
    assert core.listVolumes()[0]["state"] == "available"
    assert volume_disks(ctx, "vm1") == {}


def test_grow_a_volume_and_resize_a_stopped_vm(ctx, host, image):
    gen_vm(ctx, image, "vm1")
    core.addVolume({"name": "data1", "size": 1})
    core.attachVolume("data1", "vm1")
    assert core.growVolume("data1", 3)["size"] == 3
    assert header(storage(ctx).volumes_dir / "data1.qcow2")["virtual-size"] == 3 * GIB

    vm = core.resizeVm("vm1", {"mem": 128, "vcpus": 2, "disk": 4})
    assert (vm["mem"], vm["vcpus"], vm["disk"]) == (128, 2, 4)
    domain = definition(ctx, "vm1")
    assert int(domain.findtext("memory")) == 128 * 1024 and domain.findtext("vcpu") == "2"
    assert volume_disks(ctx, "vm1") == {"vdb": ("/mnt/iaas/volumes/data1.qcow2", "data1")}
    assert header(storage(ctx).vms_dir / "vm1.qcow2")["virtual-size"] == 4 * GIB
    with pytest.raises(core.InvalidInput, match="the disk of vm1 is 4 GiB: it can only grow"):
        core.resizeVm("vm1", {"disk": 3})
    # what is already so is no change: asking for the same memory again resizes only the disk
    assert core.resizeVm("vm1", {"mem": 128, "disk": 5})["disk"] == 5


def test_a_running_vm_keeps_its_memory_and_vcpus(ctx, host, image):
    gen_vm(ctx, image, "vm1", start=True)
    before = snapshot(ctx)
    with pytest.raises(core.Conflict, match="vm1 is running: stop it to change its memory"):
        core.resizeVm("vm1", {"mem": 128})
    assert snapshot(ctx) == before
    # its memory as it is, with a bigger disk: only the disk is asked for (the test driver
    # cannot grow a running domain's disk: the grow itself is the integration tier's)
    with pytest.raises(core.OperationFailed, match="virDomainBlockResize"):
        core.resizeVm("vm1", {"mem": 64, "disk": 2})
    assert core.listVms("id = vm1")[0]["disk"] == 1  # the failure recorded what is true


def test_a_resize_beyond_the_hosts_room_is_refused(ctx, host, image):
    gen_vm(ctx, image, "vm1")
    ctx.config["MEM_OVERCOMMIT"] = 1.0
    before = snapshot(ctx)
    with pytest.raises(core.InvalidInput, match="host h1 cannot take"):
        core.resizeVm("vm1", {"mem": 4_000_000})
    assert snapshot(ctx) == before


def test_quotas_count_volumes(ctx, host, image):
    core.addProject({"name": "lab", "quota": {"disk": 4}})
    gen_vm(ctx, image, "vm1", project="lab")  # a 1 GiB disk
    core.addVolume({"name": "data1", "size": 2, "project": "lab"})
    assert core.listProjects()[1]["usage"]["disk"] == 3
    before = snapshot(ctx)
    with pytest.raises(core.QuotaExceeded, match="disk: 3 of 4 GiB used, this volume needs 2"):
        core.addVolume({"name": "data2", "size": 2, "project": "lab"})
    with pytest.raises(core.QuotaExceeded, match="growing it needs 2"):
        core.growVolume("data1", 4)
    with pytest.raises(core.QuotaExceeded, match="the resize needs 2"):
        core.resizeVm("vm1", {"disk": 3})
    assert snapshot(ctx) == before
    core.growVolume("data1", 3)
    assert core.listProjects()[1]["usage"]["disk"] == 4
    with pytest.raises(core.Conflict, match="still has 2 VM"):
        core.removeProject("lab")


def test_removing_a_vm_keeps_its_volumes_unless_asked(ctx, host, image):
    gen_vm(ctx, image, "vm1")
    gen_vm(ctx, image, "vm2")
    for name, vm_id in (("keep1", "vm1"), ("gone1", "vm2"), ("gone2", "vm2")):
        core.addVolume({"name": name, "size": 1})
        core.attachVolume(name, vm_id)
    core.removeVm("vm1")
    [kept] = core.listVolumes("name = keep1")
    assert (kept["vm"], kept["state"]) == (None, "available")
    core.removeVm("vm2", volumes=True)
    assert [v["name"] for v in core.listVolumes()] == ["keep1"]
    assert sorted(p.name for p in storage(ctx).volumes_dir.iterdir()) == ["keep1.qcow2"]


def test_the_monitor_says_which_volume_file_is_missing(app, ctx, host):
    core.addVolume({"name": "data1", "size": 1})
    path = storage(ctx).volumes_dir / "data1.qcow2"
    moved = path.with_name("elsewhere")
    path.rename(moved)
    monitor.poll(app)
    assert core.listVolumes()[0]["state"] == "missing"
    moved.rename(path)
    monitor.poll(app)
    assert core.listVolumes()[0]["state"] == "available"
    path.unlink()
    monitor.poll(app)
    core.removeVolume("data1")  # a missing volume can still be forgotten
    assert core.listVolumes() == []


def test_a_member_sees_and_uses_only_their_projects_volumes(ctx, host, image):
    from tests.factories import gen_user

    core.addProject({"name": "lab"})
    gen_user(ctx, "ana", role="member")
    core.addMember("lab", "ana")
    gen_vm(ctx, image, "theirs")  # in default
    core.addVolume({"name": "other", "size": 1})  # in default
    with core.acting_as("ana"):
        core.addVolume({"name": "mine", "size": 1})
        assert [v["name"] for v in core.listVolumes()] == ["mine"]
        assert core.listVolumes()[0]["project"] == "lab"
        with pytest.raises(core.NotFound, match="volume other not found"):
            core.removeVolume("other")
        with pytest.raises(core.NotFound, match="VM theirs not found"):
            core.attachVolume("mine", "theirs")
    with pytest.raises(core.Conflict, match="a volume attaches to a VM of its own project"):
        core.attachVolume("mine", "theirs")


def test_a_vm_whose_volume_header_was_altered_does_not_start(ctx, host, image):
    gen_vm(ctx, image, "vm1")
    core.addVolume({"name": "data1", "size": 1})
    core.attachVolume("data1", "vm1")
    path = storage(ctx).volumes_dir / "data1.qcow2"
    subprocess.run(
        ["qemu-img", "rebase", "-u", "-f", "qcow2", "-F", "raw", "-b", "/etc/hostname", path],
        check=True,
    )
    with pytest.raises(core.OperationFailed, match="volumes/data1.qcow2 names backing file"):
        core.startVm("vm1")
    assert core.listVms("id = vm1")[0]["state"] == "stopped"
    path.unlink()
    with pytest.raises(core.OperationFailed, match="volumes/data1.qcow2 is missing"):
        core.startVm("vm1")


def test_an_image_a_volume_was_made_from_is_not_deleted(ctx, host, image):
    from app.services import images

    core.addVolume({"name": "data1", "size": 1, "image": image})
    with pytest.raises(core.Conflict, match=f"image {image} is used by 1 volume"):
        images.delete(image, "admin")
    assert (storage(ctx).images_dir / image).is_file()
    core.removeVolume("data1")
    images.delete(image, "admin")
    assert not (storage(ctx).images_dir / image).exists()


def test_destroy_keeps_volumes_and_a_purge_deletes_them(ctx, host, image):
    gen_vm(ctx, image, "vm1")
    core.addVolume({"name": "data1", "size": 1})
    core.attachVolume("data1", "vm1")
    core.destroy()
    assert core.listVms() == []
    [kept] = core.listVolumes()
    assert (kept["vm"], kept["state"]) == (None, "available")
    assert (storage(ctx).volumes_dir / "data1.qcow2").is_file()
    core.destroy(purge=True)
    assert list(storage(ctx).volumes_dir.iterdir()) == []


def test_an_offline_grow_reaches_no_file_a_rewritten_header_names(ctx, host, tmp_path):
    """A host may rewrite a volume's header between any check and qemu-img's open: naming an
    external data file (which a resize truncates) must not let the controller's qemu-img
    touch a file hosts cannot write."""
    core.addVolume({"name": "data1", "size": 1})
    victim = tmp_path / "controller-file"
    victim.write_bytes(b"keep me" * 1000)
    path = storage(ctx).volumes_dir / "data1.qcow2"
    rewritten = tmp_path / "rewritten.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-o", f"data_file={victim}", rewritten, "1G"],
        check=True,
    )
    victim.write_bytes(b"keep me" * 1000)  # qemu-img create emptied it: as it was
    path.write_bytes(rewritten.read_bytes())  # the host's rewrite, in place
    with pytest.raises(core.OperationFailed, match="names an external data file"):
        core.growVolume("data1", 2)  # the operation's own check refuses it clearly
    with pytest.raises(core.OperationFailed):  # and past that check, qemu-img cannot reach it
        storage(ctx).grow_file(path, 3)
    assert victim.read_bytes() == b"keep me" * 1000


def test_a_definition_naming_a_volume_its_rows_do_not_is_not_started(ctx, host, image):
    """An attach whose undo could not reach the host may leave the volume in the domain's
    definition: the VM does not start with a volume that may be another VM's now."""
    from app.repositories import volumes as volumes_repo

    gen_vm(ctx, image, "vm1")
    core.addVolume({"name": "data1", "size": 1})
    core.attachVolume("data1", "vm1")
    volumes_repo.detach(get_db(), "data1", "available")  # the rows say otherwise now
    with pytest.raises(core.OperationFailed, match=r"never gave it: .*volumes/data1.qcow2"):
        core.startVm("vm1")
    assert core.listVms("id = vm1")[0]["state"] == "stopped"


def test_a_volume_left_in_error_while_attached_is_detached(ctx, host, image):
    from app.repositories import volumes as volumes_repo

    gen_vm(ctx, image, "vm1")
    core.addVolume({"name": "data1", "size": 1})
    core.attachVolume("data1", "vm1")
    volumes_repo.set_state(get_db(), "data1", "error")  # as a failed attach's undo leaves it
    with pytest.raises(core.Conflict, match="attached to VM vm1: detach it first"):
        core.removeVolume("data1")
    assert core.detachVolume("data1")["state"] == "available"
    assert volume_disks(ctx, "vm1") == {}
