"""The core API on libvirt's test driver, the recording provisioner and a real repository."""

import json
import subprocess

import libvirt
import pytest

from app import core
from app.db import get_db
from app.repositories import vms as vms_repo
from tests.conftest import row
from tests.factories import gen_image


@pytest.fixture
def host_fields():
    """This module's ready host (tests/conftest.py) has no network: its VMs get no NIC."""
    return {"network": "none"}


def disk_of(app, vm_id):
    """The VM's disk in the repository."""
    return app.extensions["nube"].storage.vms_dir / f"{vm_id}.qcow2"


def test_add_host_without_preparation_checks_libvirt(ctx, host, provisioner):
    assert host["name"] == "h1"
    assert host["state"] == "ready"
    assert host["mem"] == 3072 and host["cpus"] == 16
    assert host["kvm"] is False and host["mem_allocated"] == 0
    assert "password" not in host and "password_enc" not in host
    # prepare=False runs no host playbook; the NFS export is refreshed for the new client
    assert [run.playbook for run in provisioner.runs] == ["iaas_init.yaml"]
    assert provisioner.runs[0].extravars["nfs_clients"] == ["127.0.0.1"]
    assert core.listHosts() == [host]


def test_add_host_with_preparation_runs_host_add(ctx, provisioner):
    host = core.addHost({"address": "127.0.0.1", "user": "nube", "password": "s3cret!"})
    assert host["name"] == "127.0.0.1" and host["share"] == "nfs"
    run = provisioner.runs[0]
    assert run.playbook == "host_add.yaml" and run.had_password
    assert run.extravars["share"] == "nfs" and run.extravars["controller_pubkey"].startswith(
        "ssh-ed25519 "
    )
    assert "s3cret!" not in json.dumps(run.extravars)
    stored = get_db().execute("SELECT password_enc FROM hosts").fetchone()[0]
    assert stored and "s3cret!" not in stored  # encrypted at rest
    log = "\n".join(r[0] for r in get_db().execute("SELECT message FROM operation_log"))
    assert "s3cret!" not in log


def test_failed_add_host_leaves_no_row(ctx, provisioner):
    provisioner.fail["host_add.yaml"] = "unreachable: ssh said no"
    with pytest.raises(core.OperationFailed) as raised:
        core.addHost({"address": "10.0.0.9", "user": "nube", "password": "pw"})
    assert "unreachable: ssh said no" in str(raised.value)
    assert core.listHosts() == []
    op = get_db().execute("SELECT * FROM operations").fetchone()
    assert op["status"] == "failed" and op["target_name"] == "10.0.0.9"
    assert "password" not in json.loads(op["input"])


@pytest.mark.parametrize(
    "data, message",
    [
        ({"user": "root", "prepare": False}, "address is required"),
        ({"address": "a b", "user": "root", "prepare": False}, "not a host name"),
        ({"address": "h", "user": "Root;", "prepare": False}, "not a valid user"),
        ({"address": "h", "user": "root"}, "password is required"),
        ({"address": "h", "user": "root", "prepare": False, "share": "smb"}, "share must be"),
        ({"address": "h", "user": "root", "prepare": False, "colour": "red"}, "unknown host"),
        ({"address": "h", "user": "root", "prepare": False, "network": "x'y"}, "network"),
        ("not a dict", "must be a dict"),
    ],
)
def test_add_host_refuses_bad_input(ctx, data, message):
    with pytest.raises(core.InvalidInput, match=message):
        core.addHost(data)
    assert core.listHosts() == []


def test_duplicate_host_refused(ctx, host):
    with pytest.raises(core.InvalidInput, match="already exists"):
        core.addHost({"address": "127.0.0.1", "user": "root", "prepare": False, "name": "h2"})


def test_vm_lifecycle_with_real_overlay(ctx, host, image):
    vm = core.addVm({"id": "web1", "image": image, "mem": 128, "vcpus": 2})
    assert vm == {
        "id": "web1",
        "host": host["id"],
        "host_name": "h1",
        "image": image,
        "mem": 128,
        "vcpus": 2,
        "disk": 1,  # GiB: the test image's virtual size, rounded up
        "project": "default",
        "state": "stopped",
        "task": None,
        "last_seen": vm["last_seen"],
        "ip": None,  # no NIC on a Nube network
        "networks": [],
    }
    info = json.loads(
        subprocess.run(
            ["qemu-img", "info", "--output=json", str(disk_of(ctx, "web1"))],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    assert info["format"] == "qcow2" and info["backing-filename"] == f"../images/{image}"
    conn = libvirt.open("test:///default")
    assert conn.lookupByName("web1").maxMemory() == 128 * 1024
    assert core.listHosts()[0]["mem_allocated"] == 128

    core.startVm("web1")
    assert core.listVms("state=running")[0]["id"] == "web1"
    with pytest.raises(core.InvalidInput, match="already running|cannot start"):
        core.startVm("web1")
    core.stopVm("web1")
    assert core.listVms()[0]["state"] == "stopped"
    core.startVm("web1")
    core.stopVm("web1", force=True)
    assert core.listVms()[0]["state"] == "stopped"
    core.removeVm("web1")
    assert core.listVms() == []
    assert not disk_of(ctx, "web1").exists()
    with pytest.raises(libvirt.libvirtError):
        conn.lookupByName("web1")


def test_remove_running_vm_forces_it_off(ctx, host, image):
    core.addVm({"id": "r1", "image": image, "mem": 64})
    core.startVm("r1")
    core.removeVm("r1")
    assert core.listVms() == [] and not disk_of(ctx, "r1").exists()


def test_copy_mode_makes_a_standalone_disk(ctx, app, host, image):
    app.extensions["nube"].storage.disk_mode = "copy"
    core.addVm({"id": "c1", "image": image, "mem": 64})
    info = json.loads(
        subprocess.run(
            ["qemu-img", "info", "--output=json", str(disk_of(app, "c1"))],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    assert "backing-filename" not in info


@pytest.mark.parametrize("vm_id", ["../x", "/etc/passwd", "a/b", "a\x00b", "a b", ".hidden", ""])
def test_bad_vm_ids_refused(ctx, host, image, vm_id):
    with pytest.raises(core.InvalidInput):
        core.addVm({"id": vm_id, "image": image, "mem": 64})
    assert core.listVms() == []


@pytest.mark.parametrize("image_name", ["../images/x", "/etc/passwd", "a/b", "x\x00", "a b"])
def test_bad_image_names_refused(ctx, host, image_name):
    with pytest.raises(core.InvalidInput):
        core.addVm({"id": "v", "image": image_name, "mem": 64})


def test_missing_image_is_not_found_and_changes_nothing(ctx, host):
    with pytest.raises(core.NotFound):
        core.addVm({"id": "v", "image": "nope.qcow2", "mem": 64})
    assert core.listVms() == []


def test_vm_input_checked(ctx, host, image):
    with pytest.raises(core.InvalidInput, match="mem must be at least 16"):
        core.addVm({"id": "v", "image": image, "mem": 8})
    with pytest.raises(core.InvalidInput, match="vcpus"):
        core.addVm({"id": "v", "image": image, "mem": 64, "vcpus": 0})
    with pytest.raises(core.InvalidInput, match="mem is required"):
        core.addVm({"id": "v", "image": image})


def test_duplicate_vm_refused(ctx, host, image):
    core.addVm({"id": "d", "image": image, "mem": 64})
    with pytest.raises(core.InvalidInput, match="already exists"):
        core.addVm({"id": "d", "image": image, "mem": 64})


def test_too_little_memory_says_why_per_host(ctx, host, image):
    with pytest.raises(core.InvalidInput, match="h1"):
        core.addVm({"id": "big", "image": image, "mem": 1_000_000})
    assert core.listVms() == [] and not disk_of(ctx, "big").exists()


def test_failed_define_leaves_no_vm_and_no_disk(ctx, host, image, monkeypatch):
    hypervisor = ctx.extensions["nube"].hypervisor

    def broken_define(host, xml):
        raise core.HostUnreachable("host h1 did not answer")

    monkeypatch.setattr(hypervisor, "define", broken_define)
    with pytest.raises(core.OperationFailed, match="did not answer"):
        core.addVm({"id": "f1", "image": image, "mem": 64})
    assert core.listVms() == [] and not disk_of(ctx, "f1").exists()
    op = get_db().execute("SELECT * FROM operations WHERE kind='vm.create'").fetchone()
    assert op["status"] == "failed" and op["target_name"] == "f1"


def test_busy_vm_refuses_a_second_action(ctx, host, image):
    core.addVm({"id": "b1", "image": image, "mem": 64})
    assert vms_repo.claim_task(get_db(), "b1", "starting", 42)
    with pytest.raises(core.Busy, match="operation 42 is running"):
        core.startVm("b1")
    assert not vms_repo.claim_task(get_db(), "b1", "stopping", 43)


def test_list_filters(ctx, host, image):
    for index, mem in enumerate((64, 512, 1024)):
        core.addVm({"id": f"f{index}", "image": image, "mem": mem})
    core.startVm("f1")
    assert [v["id"] for v in core.listVms("state='running' AND mem >= 512")] == ["f1"]
    assert [v["id"] for v in core.listVms("state=running")] == ["f1"]
    assert [v["id"] for v in core.listVms("mem >= 512 OR id = 'f0'")] == ["f0", "f1", "f2"]
    assert [v["id"] for v in core.listVms("host_name = h1 AND NOT state = running")] == ["f0", "f2"]
    assert core.listHosts("mem_allocated >= 1600")[0]["name"] == "h1"
    for hostile in ("1=1; DROP TABLE vms", "id='x' OR 1=1 --", "password = x"):
        with pytest.raises(core.InvalidInput):
            core.listVms(hostile)
        with pytest.raises(ValueError):
            core.listHosts(hostile)
    assert len(core.listVms()) == 3


def test_update_host(ctx, host):
    updated = core.updateHost(host["id"], {"name": "renamed", "state": "disabled"})
    assert updated["name"] == "renamed" and updated["state"] == "disabled"
    updated = core.updateHost(str(host["id"]), {"state": "ready", "network": "bridge:br0"})
    assert updated["state"] == "ready" and updated["network"] == "bridge:br0"
    with pytest.raises(core.InvalidInput, match="among ready, disabled, maintenance"):
        core.updateHost(host["id"], {"state": "removing"})
    updated = core.updateHost(host["id"], {"state": "maintenance"})
    assert updated["state"] == "maintenance"
    with pytest.raises(core.InvalidInput, match="state is maintenance"):  # placement skips it
        core.addVm({"id": "nope", "image": gen_image(ctx), "mem": 64, "host": host["id"]})
    core.updateHost(host["id"], {"state": "ready"})
    with pytest.raises(core.InvalidInput):
        core.updateHost("h1", {"name": "x"})
    with pytest.raises(core.NotFound):
        core.updateHost(999, {"name": "x"})


def test_address_change_refused_on_host_with_vms(ctx, host, image):
    core.addVm({"id": "a1", "image": image, "mem": 64})
    with pytest.raises(core.InvalidInput, match="has VMs"):
        core.updateHost(host["id"], {"address": "127.0.0.9"})


def test_disabled_host_takes_no_new_vms(ctx, host, image):
    core.updateHost(host["id"], {"state": "disabled"})
    with pytest.raises(core.InvalidInput, match="disabled"):
        core.addVm({"id": "n", "image": image, "mem": 64})


def test_remove_host_removes_its_vms_first(ctx, image, provisioner):
    host = core.addHost({"address": "127.0.0.1", "user": "root", "password": "pw"})
    core.addVm({"id": "x1", "image": image, "mem": 64})
    core.startVm("x1")
    core.removeHost(host["id"])
    assert core.listHosts() == [] and core.listVms() == []
    assert not disk_of(ctx, "x1").exists()
    # host_remove.yaml, then the export refreshed without the host
    assert [r.playbook for r in provisioner.runs][-2:] == ["host_remove.yaml", "iaas_init.yaml"]
    assert provisioner.runs[-1].extravars["nfs_clients"] == []


def test_failed_host_removal_keeps_host_registered(ctx, image, provisioner):
    host = core.addHost({"address": "127.0.0.1", "user": "root", "password": "pw"})
    provisioner.fail["host_remove.yaml"] = "ssh: connection refused"
    with pytest.raises(core.OperationFailed):
        core.removeHost(host["id"])
    [kept] = core.listHosts()
    assert kept["state"] == "error"


def test_init_and_destroy(ctx, host, image, provisioner):
    core.init()
    core.addVm({"id": "z1", "image": image, "mem": 64})
    core.destroy()
    assert core.listHosts() == [] and core.listVms() == []
    playbooks = [r.playbook for r in provisioner.runs]
    assert playbooks[0] == "iaas_init.yaml" and playbooks[-1] == "iaas_destroy.yaml"
    assert (ctx.extensions["nube"].storage.images_dir / image).exists()  # images stay


def test_not_found_errors(ctx):
    with pytest.raises(core.NotFound):
        core.startVm("ghost")
    with pytest.raises(core.NotFound):
        core.removeHost(12345)
    with pytest.raises(core.InvalidInput):
        core.removeHost("abc")


def test_removing_an_unprepared_host_leaves_it_as_it_is(ctx, provisioner):
    host = core.addHost(
        {
            "address": "127.0.0.1",
            "user": "root",
            "password": "pw",
            "prepare": False,
            "share": "bind",
        }
    )
    core.removeHost(host["id"])
    assert core.listHosts() == []
    assert "host_remove.yaml" not in [run.playbook for run in provisioner.runs]


def test_add_host_failing_after_preparation_undoes_it(ctx, provisioner, monkeypatch):
    hypervisor = ctx.extensions["nube"].hypervisor

    def silent(host):
        raise core.HostUnreachable("host did not answer within 10s")

    monkeypatch.setattr(hypervisor, "host_info", silent)
    with pytest.raises(core.OperationFailed, match="did not answer"):
        core.addHost({"address": "127.0.0.1", "user": "nube", "password": "pw"})
    assert [run.playbook for run in provisioner.runs] == ["host_add.yaml", "host_remove.yaml"]
    assert core.listHosts() == []


def test_a_failed_create_never_removes_a_domain_it_did_not_make(app, host, image):
    hypervisor = app.extensions["nube"].hypervisor
    with app.app_context():
        host_row = dict(get_db().execute("SELECT * FROM hosts").fetchone())
        hypervisor.define(
            host_row,
            "<domain type='test'><name>foreign</name>"
            "<memory>65536</memory><os><type>hvm</type></os></domain>",
        )
        with pytest.raises(core.OperationFailed, match="already has a domain named foreign"):
            core.addVm({"id": "foreign", "image": image, "mem": 64})
        assert hypervisor.domain_state(host_row, "foreign") == "stopped"  # still there
        assert core.listVms() == []
        hypervisor.undefine(host_row, "foreign")


def test_destroy_releases_a_host_whose_removal_crashed(app, host, image, monkeypatch):
    provisioner = app.extensions["nube"].provisioner

    def broken(address):
        raise OSError("known_hosts is read-only")

    monkeypatch.setattr(provisioner, "forget_host_key", broken)
    with app.app_context():
        core.addVm({"id": "d1", "image": image, "mem": 64})
        with pytest.raises(core.OperationFailed, match="could not be removed"):
            core.destroy()
        [kept] = core.listHosts()
        assert kept["state"] == "error"
    assert row(app, "SELECT COUNT(*) AS n FROM hosts WHERE task IS NOT NULL")["n"] == 0
    assert row(app, "SELECT COUNT(*) AS n FROM vms WHERE task IS NOT NULL")["n"] == 0
