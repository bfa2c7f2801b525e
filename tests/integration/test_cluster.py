"""Nube end to end on lab hosts: real ansible-runner over SSH, real libvirtd and QEMU, real disks.

The tests of this module run in order on one controller and two lab hosts; each step checks the
outcome on the hosts themselves (virsh over the host's URI, QEMU processes), not only Nube's rows.
"""

import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from app import core
from app.db import get_db
from tests.conftest import make_image
from tests.integration.conftest import lab_controller
from tests.lab import lab

pytestmark = pytest.mark.integration

IMAGE = "base.qcow2"


@pytest.fixture(scope="module")
def cluster(lab_hosts):
    """A controller (real provisioner, libssh URIs) whose repository QEMU can reach."""
    app, top = lab_controller("nube-it-", STOP_TIMEOUT=3)
    repository = top / "export" / "iaas"
    with app.app_context():
        core.init()  # iaas_init.yaml for real (export none: no kernel NFS here)
        make_image(repository / "images" / IMAGE, size="64M", fmt="qcow2")
        yield {"app": app, "hosts": lab_hosts[:2], "repository": repository}  # two: its spreads
        try:
            core.destroy()
        finally:
            app.extensions["nube"].hypervisor.close()
            shutil.rmtree(top, ignore_errors=True)


def host_uri(app, name):
    """The libvirt URI Nube uses for a registered host."""
    row = get_db().execute("SELECT * FROM hosts WHERE name = ?", (name,)).fetchone()
    return app.extensions["nube"].hypervisor.uri_for(dict(row))


def virsh(app, host_name, *args):
    """virsh over the same URI (key and known_hosts) Nube uses for that host."""
    result = subprocess.run(
        ["virsh", "-c", host_uri(app, host_name), *args], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def last_operation(kind):
    """The newest operation of a kind, with its log."""
    row = dict(
        get_db()
        .execute("SELECT * FROM operations WHERE kind = ? ORDER BY id DESC", (kind,))
        .fetchone()
    )
    row["log"] = "\n".join(
        r[0]
        for r in get_db().execute(
            "SELECT message FROM operation_log WHERE operation_id = ? ORDER BY id", (row["id"],)
        )
    )
    return row


def test_wrong_password_fails_with_a_readable_log_and_changes_nothing(cluster):
    lab_host = cluster["hosts"][0]
    before = core.listHosts()
    with pytest.raises(core.OperationFailed) as raised:
        core.addHost(
            {
                "address": lab_host["address"],
                "user": lab_host["user"],
                "password": "not-the-password",
                "name": "wrongpw",
                "share": "bind",
            }
        )
    assert "already exists" not in str(raised.value)
    assert "refused the sudo user's password" in str(raised.value)
    op = last_operation("host.add")
    assert op["status"] == "failed" and op["target_name"] == "wrongpw"
    assert "not-the-password" not in op["log"] and op["error"]
    assert core.listHosts() == before


def test_unreachable_address_fails_and_changes_nothing(cluster):
    before = core.listHosts()
    with pytest.raises(core.OperationFailed, match="127.0.0.250"):
        core.addHost({"address": "127.0.0.250", "user": "nobody", "password": "x", "share": "bind"})
    assert core.listHosts() == before
    assert last_operation("host.add")["status"] == "failed"


def test_add_two_hosts_with_their_passwords(cluster):
    for index, lab_host in enumerate(cluster["hosts"], start=1):
        host = core.addHost(
            {
                "address": lab_host["address"],
                "user": lab_host["user"],
                "password": lab_host["password"],
                "name": f"lab{index}",
                "share": "bind",
                "network": "none",
                "data_address": lab_host["data_address"],  # migrations go over the underlay
            }
        )
        assert host["state"] == "ready" and host["cpus"] > 0 and host["mem"] > 0
        op = last_operation("host.add")
        assert op["status"] == "succeeded"
        assert "changed: [lab" in op["log"] and lab_host["password"] not in op["log"]
    stored = get_db().execute("SELECT host_key, password_enc FROM hosts").fetchall()
    assert all(row["host_key"].startswith("ssh-") for row in stored)
    assert all(
        lab["password"] not in row["password_enc"]
        for row, lab in zip(stored, cluster["hosts"], strict=True)
    )
    # after host_add, libvirt is reached with the controller's key, checked against known_hosts
    for name in ("lab1", "lab2"):
        assert "Name" in virsh(cluster["app"], name, "list", "--all")


def test_four_vms_are_spread_and_defined_where_nube_says(cluster):
    for n in range(4):
        core.addVm({"id": f"it{n}", "image": IMAGE, "mem": 64 + 16 * n})
    vms = {vm["id"]: vm for vm in core.listVms()}
    assert sorted(vm["host_name"] for vm in vms.values()) == ["lab1", "lab1", "lab2", "lab2"]
    for vm in vms.values():
        names = virsh(cluster["app"], vm["host_name"], "list", "--all", "--name").split()
        assert vm["id"] in names
        other = "lab2" if vm["host_name"] == "lab1" else "lab1"
        assert vm["id"] not in virsh(cluster["app"], other, "list", "--all", "--name").split()
        xml = ET.fromstring(virsh(cluster["app"], vm["host_name"], "dumpxml", vm["id"]))
        assert int(xml.findtext("memory")) == vm["mem"] * 1024  # KiB
        assert xml.find("devices/disk/source").get("file") == f"/mnt/iaas/vms/{vm['id']}.qcow2"
        disk = cluster["repository"] / "vms" / f"{vm['id']}.qcow2"
        assert disk.exists() and disk.stat().st_size < 1024 * 1024  # a thin overlay


def test_start_runs_qemu_on_that_host(cluster):
    core.startVm("it0")
    vm = core.listVms("id = it0")[0]
    assert vm["state"] == "running"
    states = virsh(cluster["app"], vm["host_name"], "domstate", "it0")
    assert "running" in states
    qemu = subprocess.run(["pgrep", "-f", "guest=it0"], capture_output=True, text=True)
    assert qemu.stdout.strip(), "no QEMU process for it0"


def test_graceful_stop_falls_back_to_force_off(cluster):
    core.stopVm("it0")  # a blank disk ignores ACPI: forced off after STOP_TIMEOUT
    assert core.listVms("id = it0")[0]["state"] == "stopped"
    assert (
        "forcing it0 off" in last_operation("vm.stop")["log"]
        or "shut down" in last_operation("vm.stop")["log"]
    )
    assert "shut off" in virsh(
        cluster["app"], core.listVms("id = it0")[0]["host_name"], "domstate", "it0"
    )


def test_force_off_and_remove(cluster):
    core.startVm("it1")
    core.stopVm("it1", force=True)
    assert core.listVms("id = it1")[0]["state"] == "stopped"
    host_name = core.listVms("id = it1")[0]["host_name"]
    core.startVm("it1")
    core.removeVm("it1")  # running: forced off, undefined, disk deleted
    assert core.listVms("id = it1") == []
    assert "it1" not in virsh(cluster["app"], host_name, "list", "--all", "--name").split()
    assert not (cluster["repository"] / "vms" / "it1.qcow2").exists()


def other_host(name):
    """The other of the two lab hosts."""
    return {"lab1": "lab2", "lab2": "lab1"}[name]


def test_a_running_vm_migrates_live_and_back(cluster):
    core.startVm("it0")
    source = core.listVms("id = it0")[0]["host_name"]
    target = other_host(source)
    vm = core.migrateVm("it0", target)
    assert vm["host_name"] == target and vm["state"] == "running"
    # checked on the hosts themselves: running there, gone from where it was
    assert "running" in virsh(cluster["app"], target, "domstate", "it0")
    assert "it0" not in virsh(cluster["app"], source, "list", "--all", "--name").split()
    log = last_operation("vm.migrate")["log"]
    assert f"migrating it0 live from {source} to {target}" in log
    assert "VIR_MIGRATE_UNSAFE" in log  # bind-mounted repository: only there
    assert f"it0 is on {target} now (running)" in log
    back = core.migrateVm("it0")  # placement never picks the VM's own host
    assert back["host_name"] == source and back["state"] == "running"
    assert "running" in virsh(cluster["app"], source, "domstate", "it0")


def test_a_stopped_vm_moves_its_definition(cluster):
    core.stopVm("it0", force=True)
    source = core.listVms("id = it0")[0]["host_name"]
    vm = core.migrateVm("it0")
    target = other_host(source)
    assert vm["host_name"] == target and vm["state"] == "stopped"
    assert "shut off" in virsh(cluster["app"], target, "domstate", "it0")
    assert "it0" not in virsh(cluster["app"], source, "list", "--all", "--name").split()
    assert "moving the definition of stopped it0" in last_operation("vm.migrate")["log"]


def test_migrations_that_cannot_be_are_refused_with_the_reason(cluster):
    vm = core.listVms("id = it0")[0]
    with pytest.raises(core.InvalidInput, match=f"already on host {vm['host_name']}"):
        core.migrateVm("it0", vm["host_name"])
    app = cluster["app"]
    overcommit = app.config["MEM_OVERCOMMIT"]
    app.config["MEM_OVERCOMMIT"] = 1e-6  # the other host has (almost) no room
    try:
        with pytest.raises(core.InvalidInput, match="cannot take a VM of 64 MiB: 0 MiB free"):
            core.migrateVm("it0", other_host(vm["host_name"]))
    finally:
        app.config["MEM_OVERCOMMIT"] = overcommit
    assert core.listVms("id = it0")[0]["host_name"] == vm["host_name"]


def redefine_on(app, host_name, vm_id, device, folder):
    """What a compromised host does: redefine the VM's domain with one more device."""
    xml = virsh(app, host_name, "dumpxml", "--inactive", vm_id)
    path = folder / f"{vm_id}.xml"
    path.write_text(xml.replace("</devices>", f"{device}</devices>"))
    virsh(app, host_name, "define", str(path))
    assert device.split()[0] in virsh(app, host_name, "dumpxml", "--inactive", vm_id)


def names_on(app, host_name):
    """The domains a host has, running or not."""
    return virsh(app, host_name, "list", "--all", "--name").split()


def test_a_rewritten_domain_is_refused_a_move_and_stays(cluster, tmp_path):
    """Issue 20, finding 1: a host that adds a device to its domain gets neither a live nor an
    offline move of it; nothing is defined on the other host."""
    app = cluster["app"]
    block = "<disk type='block' device='disk'><source dev='/dev/sda'/><target dev='vdb'/></disk>"
    share = (
        "<filesystem type='mount' accessmode='squash'><source dir='/'/><target dir='root'/>"
        "</filesystem>"
    )
    for vm_id, device, start in (("rw0", block, False), ("rw1", share, True)):
        core.addVm({"id": vm_id, "image": IMAGE, "mem": 64, "host": "lab1"})
        redefine_on(app, "lab1", vm_id, device, tmp_path)
        if start:
            core.startVm(vm_id)  # the host runs what it likes itself; it does not spread
        with pytest.raises(core.OperationFailed, match=r"has what Nube never gave it: <"):
            core.migrateVm(vm_id, "lab2")
        assert device.split()[0] in last_operation("vm.migrate")["error"]
        vm = core.listVms(f"id = {vm_id}")[0]
        assert vm["host_name"] == "lab1" and vm["state"] == ("running" if start else "stopped")
        assert vm_id in names_on(app, "lab1") and vm_id not in names_on(app, "lab2")
        core.removeVm(vm_id)


def test_a_stopped_vm_lands_with_nubes_rendering(cluster):
    """The definition a stopped VM gets on its new host names its whole backing chain."""
    core.addVm({"id": "st0", "image": IMAGE, "mem": 64, "host": "lab1"})
    core.migrateVm("st0", "lab2")
    xml = ET.fromstring(virsh(cluster["app"], "lab2", "dumpxml", "--inactive", "st0"))
    [disk] = xml.findall("devices/disk[@device='disk']")
    chain = disk.find("backingStore")
    assert chain.find("source").get("file") == f"/mnt/iaas/images/{IMAGE}"
    assert chain.find("format").get("type") == "qcow2" and chain.find("backingStore") is not None
    assert "st0" not in names_on(cluster["app"], "lab1")
    core.removeVm("st0")


def test_a_rebased_overlay_is_refused_at_start(cluster):
    """Issue 20, finding 2: a host rewrote an overlay's header to name another file."""
    core.addVm({"id": "rb0", "image": IMAGE, "mem": 64, "host": "lab1"})
    elsewhere = cluster["repository"] / "vms" / "rb0.qcow2"
    subprocess.run(
        ["qemu-img", "rebase", "-u", "-F", "raw", "-b", "/etc/hostname", str(elsewhere)],
        check=True,
    )
    with pytest.raises(core.OperationFailed, match="names backing file '/etc/hostname'"):
        core.startVm("rb0")
    assert core.listVms("id = rb0")[0]["state"] == "stopped"
    assert "running" not in virsh(cluster["app"], "lab1", "domstate", "rb0")
    core.removeVm("rb0")


def test_live_migration_streams_to_the_data_address(cluster, monkeypatch):
    """Issue 20, finding 5: QEMU on the destination listens on its data address only, and the
    stream goes there (here a second address of lab2 on the lab's underlay, which only lab
    hosts reach)."""
    import libvirt

    passed = []
    migrate3 = libvirt.virDomain.migrate3

    def recording(dom, dconn, params, flags):
        passed.append(dict(params))
        return migrate3(dom, dconn, params, flags)

    monkeypatch.setattr(libvirt.virDomain, "migrate3", recording)
    lab2 = host_named("lab2")
    underlay = cluster["hosts"][1]["data_address"]
    data_address = "198.18.0.203"
    extra = [f"{data_address}/24", "dev", "data0"]
    subprocess.run(["ip", "-n", cluster["hosts"][1]["netns"], "addr", "add", *extra], check=True)
    core.updateHost(lab2["id"], {"data_address": data_address})
    try:
        core.addVm({"id": "dm0", "image": IMAGE, "mem": 64, "host": "lab1", "start": True})
        vm = core.migrateVm("dm0", "lab2")
        assert vm["host_name"] == "lab2" and vm["state"] == "running"
        [params] = passed
        assert params[libvirt.VIR_MIGRATE_PARAM_URI] == f"tcp://{data_address}"
        assert params[libvirt.VIR_MIGRATE_PARAM_LISTEN_ADDRESS] == data_address
        assert "<backingStore" in params[libvirt.VIR_MIGRATE_PARAM_DEST_XML]
        assert "running" in virsh(cluster["app"], "lab2", "domstate", "dm0")
        core.removeVm("dm0")
    finally:
        core.updateHost(lab2["id"], {"data_address": ""})
        assert host_named("lab2")["data_address"] == lab2["address"]
        core.updateHost(lab2["id"], {"data_address": underlay})
        subprocess.run(["ip", "-n", cluster["hosts"][1]["netns"], "addr", "del", *extra])


def test_missing_image_and_too_little_memory(cluster):
    before = core.listVms()
    with pytest.raises(core.NotFound):
        core.addVm({"id": "ghost", "image": "nope.qcow2", "mem": 64})
    with pytest.raises(core.InvalidInput) as raised:
        core.addVm({"id": "huge", "image": IMAGE, "mem": 4_000_000})
    assert "lab1" in str(raised.value) and "lab2" in str(raised.value)
    assert core.listVms() == before
    assert not (cluster["repository"] / "vms" / "huge.qcow2").exists()


def host_named(name):
    """The registered host with this name."""
    return next(h for h in core.listHosts() if h["name"] == name)


def test_drain_empties_a_host_with_three_vms_two_running(cluster):
    lab1, lab2 = host_named("lab1"), host_named("lab2")
    for n in range(3):
        core.addVm({"id": f"dr{n}", "image": IMAGE, "mem": 64, "host": "lab1", "start": n < 2})
    leaving = sorted(vm["id"] for vm in core.listVms(f"host = {lab1['id']}"))
    result = core.drainHost(lab1["id"])
    assert sorted(result["moved"]) == leaving and result["stayed"] == []
    assert core.listVms(f"host = {lab1['id']}") == []
    assert host_named("lab1")["state"] == "maintenance"  # placement skips it now
    for n in range(3):
        vm = core.listVms(f"id = dr{n}")[0]
        assert vm["host"] == lab2["id"]
        assert vm["state"] == ("running" if n < 2 else "stopped")
        assert ("running" if n < 2 else "shut off") in virsh(
            cluster["app"], "lab2", "domstate", f"dr{n}"
        )
    assert not {"dr0", "dr1", "dr2"} & set(
        virsh(cluster["app"], "lab1", "list", "--all", "--name").split()
    )
    core.updateHost(lab1["id"], {"state": "ready"})


def test_remove_a_host_after_draining_it_loses_nothing(cluster):
    lab2 = host_named("lab2")
    on_it = {vm["id"]: vm["state"] for vm in core.listVms(f"host = {lab2['id']}")}
    assert len(on_it) >= 3
    core.removeHost(lab2["id"], drain=True)
    assert [h["name"] for h in core.listHosts()] == ["lab1"]
    after = {vm["id"]: vm["state"] for vm in core.listVms()}
    assert after == on_it  # every VM, in the state it had, now on lab1
    for vm_id, state in on_it.items():
        assert (cluster["repository"] / "vms" / f"{vm_id}.qcow2").exists()
        assert ("running" if state == "running" else "shut off") in virsh(
            cluster["app"], "lab1", "domstate", vm_id
        )
    assert "draining lab2" in last_operation("host.remove")["log"]


def test_remove_a_host_that_still_has_a_vm(cluster):
    host = host_named("lab1")
    on_it = [vm["id"] for vm in core.listVms(f"host = {host['id']}")]
    assert on_it
    core.startVm(next(vm["id"] for vm in core.listVms("state = stopped")))
    core.removeHost(host["id"])
    assert core.listHosts() == []
    assert core.listVms() == []
    for vm_id in on_it:
        assert not (cluster["repository"] / "vms" / f"{vm_id}.qcow2").exists()
    assert last_operation("host.remove")["status"] == "succeeded"
    # the host's own libvirt no longer has the VMs, and Nube's key is gone from it
    listed = lab.in_host(1, "virsh", "-c", "qemu:///system", "list", "--all", "--name").stdout
    assert not set(on_it) & set(listed.split())
    keys = lab.host_dir(1) / "home" / ".ssh" / "authorized_keys"
    assert "nube-controller" not in keys.read_text()
