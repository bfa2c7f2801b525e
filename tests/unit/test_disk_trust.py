"""Issue 20, findings 1 and 2 on libvirt's test driver (one driver file per host): a host's
rewritten definition never reaches another host, a rewritten overlay header is refused, and
the domain XML names the whole backing chain."""

import subprocess
import xml.etree.ElementTree as ET

import libvirt
import pytest

from app import core
from app.adapters.migration import migrate_params
from app.db import get_db
from tests.factories import gen_host, gen_vm

NODE_XML = (
    "<node><cpu><mhz>2000</mhz><model>i686</model><nodes>1</nodes><sockets>1</sockets>"
    "<cores>4</cores><threads>1</threads></cpu><memory>{kib}</memory></node>"
)
BLOCK_DISK = "<disk type='block' device='disk'><source dev='/dev/sda'/><target dev='vdb'/></disk>"


@pytest.fixture
def nodes(tmp_path):
    """The folder of test driver files, one per host address."""
    folder = tmp_path / "nodes"
    folder.mkdir()
    for name in ("a", "b"):
        (folder / f"{name}.test.xml").write_text(NODE_XML.format(kib=4 << 20))
    return folder


@pytest.fixture
def config_overrides(nodes):
    return {"LIBVIRT_URI": f"test://{nodes}/{{address}}.xml"}


@pytest.fixture
def hosts(app, nodes):
    """Two hosts, a and b, each its own test driver."""
    return [gen_host(app, address=f"{n}.test", name=n, network="none") for n in ("a", "b")]


def host_row(name):
    return dict(get_db().execute("SELECT * FROM hosts WHERE name = ?", (name,)).fetchone())


def definition(app, name, vm_id="vm1"):
    """The persistent definition of a domain on a host, or None."""
    hypervisor = app.extensions["nube"].hypervisor
    if hypervisor.domain_state(host_row(name), vm_id) is None:
        return None
    return hypervisor.definition(host_row(name), vm_id)


def rewrite_on(app, name, device, vm_id="vm1"):
    """What a compromised host does: redefine its domain with one more device."""
    xml = definition(app, name, vm_id).replace("</devices>", f"{device}</devices>")
    app.extensions["nube"].hypervisor.define(host_row(name), xml)


def disk(app, vm_id="vm1"):
    return app.extensions["nube"].storage.disk_path(vm_id)


def test_the_definition_names_the_whole_chain(ctx, hosts, image):
    gen_vm(ctx, image, host="a")
    chain = ET.fromstring(definition(ctx, "a")).find("devices/disk/backingStore")
    assert chain.get("type") == "file" and chain.find("format").get("type") == "raw"
    assert chain.find("source").get("file") == f"/mnt/iaas/images/{image}"
    end = chain.find("backingStore")
    assert end is not None and end.get("type") is None and len(end) == 0


def test_a_full_copy_has_no_backing_at_all(ctx, hosts, image):
    ctx.extensions["nube"].storage.disk_mode = "copy"
    gen_vm(ctx, image, host="a")
    chain = ET.fromstring(definition(ctx, "a")).find("devices/disk/backingStore")
    assert chain is not None and len(chain) == 0 and chain.get("type") is None
    core.startVm("vm1")  # no backing file in its header: as expected
    assert core.listVms()[0]["state"] == "running"


def test_a_rebased_overlay_is_refused_at_start(ctx, hosts, image, tmp_path):
    gen_vm(ctx, image, host="a")
    other = tmp_path / "other.raw"
    other.write_bytes(b"secret" * 100)
    subprocess.run(
        ["qemu-img", "rebase", "-u", "-F", "raw", "-b", str(other), str(disk(ctx))], check=True
    )
    with pytest.raises(core.OperationFailed, match=f"names backing file '{other}' instead of"):
        core.startVm("vm1")
    assert core.listVms()[0]["state"] == "stopped"
    # the right file in another format is refused too
    subprocess.run(
        ["qemu-img", "rebase", "-u", "-F", "qcow2", "-b", f"../images/{image}", str(disk(ctx))],
        check=True,
    )
    with pytest.raises(core.OperationFailed, match="names backing format 'qcow2' instead of raw"):
        core.startVm("vm1")
    with pytest.raises(core.OperationFailed, match="names backing format"):
        core.migrateVm("vm1", "b")  # checked before a move as well
    assert definition(ctx, "b") is None


def test_a_stopped_vm_moves_with_nubes_rendering(ctx, hosts, image):
    gen_vm(ctx, image, host="a")
    before = definition(ctx, "a")
    vm = core.migrateVm("vm1", "b")
    assert vm["host_name"] == "b" and definition(ctx, "a") is None
    moved = ET.fromstring(definition(ctx, "b"))
    assert moved.findtext("uuid") == ET.fromstring(before).findtext("uuid")
    assert moved.find("devices/disk/backingStore/source").get("file").endswith(image)


def test_a_rewritten_definition_is_refused_and_never_copied(ctx, hosts, image):
    gen_vm(ctx, image, host="a")
    rewrite_on(ctx, "a", BLOCK_DISK)
    with pytest.raises(core.OperationFailed, match="/dev/sda.*refusing to move it"):
        core.migrateVm("vm1", "b")
    assert core.listVms()[0]["host_name"] == "a"
    assert definition(ctx, "b") is None
    assert "/dev/sda" in definition(ctx, "a")  # left as it was, for the operator to see


def test_a_drain_leaves_a_rewritten_vm_on_its_host(ctx, hosts, image):
    gen_vm(ctx, image, host="a")
    gen_vm(ctx, image, "vm2", host="a")
    rewrite_on(ctx, "a", "<filesystem type='mount'><source dir='/'/><target dir='r'/></filesystem>")
    result = core.drainHost(host_row("a")["id"])
    assert result["moved"] == ["vm2"]
    assert [s["id"] for s in result["stayed"]] == ["vm1"] and "<filesystem" in result["stayed"][0][
        "reason"
    ]
    assert definition(ctx, "b") is None and definition(ctx, "b", "vm2") is not None


def test_a_running_vm_with_a_foreign_device_is_refused_before_migrating(ctx, hosts, image):
    gen_vm(ctx, image, host="a")
    rewrite_on(ctx, "a", BLOCK_DISK)
    core.startVm("vm1")
    with pytest.raises(core.OperationFailed, match="/dev/sda.*refusing to move it"):
        core.migrateVm("vm1", "b")
    vm = core.listVms()[0]
    assert vm["host_name"] == "a" and vm["state"] == "running"
    log = get_db().execute("SELECT message FROM operation_log ORDER BY id").fetchall()
    assert not any("migrating vm1 live" in row[0] for row in log)  # refused before libvirt


def test_live_migration_passes_nubes_xml_and_the_data_address():
    dst = {"address": "10.0.0.2", "data_address": "192.168.7.2"}
    params = migrate_params(dst, "<domain/>", bandwidth=50)
    assert params[libvirt.VIR_MIGRATE_PARAM_URI] == "tcp://192.168.7.2"
    assert params[libvirt.VIR_MIGRATE_PARAM_LISTEN_ADDRESS] == "192.168.7.2"
    assert params[libvirt.VIR_MIGRATE_PARAM_DEST_XML] == "<domain/>"
    assert params[libvirt.VIR_MIGRATE_PARAM_PERSIST_XML] == "<domain/>"
    assert params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] == 50
    v6 = migrate_params({"address": "h2", "data_address": "fd00::2"}, "<domain/>")
    assert v6[libvirt.VIR_MIGRATE_PARAM_URI] == "tcp://[fd00::2]"
    assert v6[libvirt.VIR_MIGRATE_PARAM_LISTEN_ADDRESS] == "fd00::2"
    with pytest.raises(core.InvalidInput):
        migrate_params({"address": "h2", "data_address": "0.0.0.0"}, "<domain/>")


def without_chain(xml):
    """A definition as Nube wrote it before it named the chain."""
    domain = ET.fromstring(xml)
    disk = domain.find("devices/disk[@device='disk']")
    disk.remove(disk.find("backingStore"))
    return ET.tostring(domain, encoding="unicode")


def test_an_older_definition_gets_the_chain_before_it_starts(ctx, hosts, image):
    gen_vm(ctx, image, host="a")
    hypervisor = ctx.extensions["nube"].hypervisor
    hypervisor.define(host_row("a"), without_chain(definition(ctx, "a")))
    assert ET.fromstring(definition(ctx, "a")).find("devices/disk/backingStore") is None
    core.startVm("vm1")
    chain = ET.fromstring(definition(ctx, "a")).find("devices/disk/backingStore")
    assert chain.find("source").get("file") == f"/mnt/iaas/images/{image}"


def test_an_older_definition_with_a_foreign_device_is_not_started(ctx, hosts, image):
    gen_vm(ctx, image, host="a")
    rewrite_on(ctx, "a", BLOCK_DISK)
    hypervisor = ctx.extensions["nube"].hypervisor
    hypervisor.define(host_row("a"), without_chain(definition(ctx, "a")))
    with pytest.raises(core.OperationFailed, match="/dev/sda.*refusing to start it"):
        core.startVm("vm1")
    assert core.listVms()[0]["state"] == "stopped"


def test_a_vm_that_arrives_with_a_foreign_device_is_forced_off(ctx, hosts, image):
    """A patched libvirt on the source could hand its own XML to the destination (libvirt's
    protocol carries the destination XML through the source): checked where it arrives."""
    from types import SimpleNamespace

    from app.db import get_db
    from app.services.definition import check_arrival

    gen_vm(ctx, image, host="b")
    nubes = definition(ctx, "b")
    nube = ctx.extensions["nube"]
    arrival = SimpleNamespace(
        hypervisor=nube.hypervisor, storage=nube.storage, config=ctx.config, conn=get_db()
    )
    vm = {"id": "vm1", "image": image}
    core.startVm("vm1")
    check_arrival(arrival, vm, host_row("b"), nubes)  # as rendered: nothing to say
    core.stopVm("vm1", force=True)
    rewrite_on(ctx, "b", BLOCK_DISK)
    core.startVm("vm1")
    with pytest.raises(core.OperationFailed, match="arrived on b with .*/dev/sda.*forced off"):
        check_arrival(arrival, vm, host_row("b"), nubes)
    hypervisor = nube.hypervisor
    assert hypervisor.domain_state(host_row("b"), "vm1") == "stopped"
    assert "/dev/sda" not in definition(ctx, "b")
    # a header rewritten during the move (the source is the attacker): forced off too
    get_db().execute("UPDATE vms SET state = 'stopped' WHERE id = 'vm1'")  # as the move's end does
    core.startVm("vm1")
    subprocess.run(["qemu-img", "rebase", "-u", "-F", "raw", "-b", "/etc/hostname", str(disk(ctx))])
    with pytest.raises(core.OperationFailed, match="names backing file '/etc/hostname'.*forced"):
        check_arrival(arrival, vm, host_row("b"), nubes)
    assert hypervisor.domain_state(host_row("b"), "vm1") == "stopped"


@pytest.mark.parametrize(
    ("info", "message"),
    [
        ({"format": "raw"}, "not a qcow2 image"),
        ({"format": "qcow2", "format-specific": {"data": {"data-file": "/dev/sda"}}}, "data file"),
        ({"format": "qcow2", "backing-filename": "../images/base.raw/../x"}, "backing file"),
        (
            {"format": "qcow2", "backing-filename": "../images/base.raw"},
            "backing format None instead of raw",
        ),
    ],
)
def test_a_header_that_names_anything_else_is_refused(info, message):
    from app.adapters.disk_chain import backing_of

    with pytest.raises(core.OperationFailed, match=message):
        backing_of(info, "vms/vm1.qcow2", "base.raw", lambda: "raw")
    good = {"format": "qcow2", "backing-filename": "../images/base.raw"}
    good["backing-filename-format"] = "raw"
    assert backing_of(good, "vms/vm1.qcow2", "base.raw", lambda: "raw") == [
        ("images/base.raw", "raw")
    ]
    assert backing_of({"format": "qcow2"}, "vms/vm1.qcow2", "base.raw", lambda: "raw") == []


def test_a_header_rewritten_while_the_vm_starts_is_caught_and_the_vm_forced_off(
    ctx, hosts, image, tmp_path, monkeypatch
):
    """Found by the second reading: between the check and QEMU's open, a host may rewrite the
    header (libvirt 9 cannot pin a data file); the check once QEMU runs catches what stays."""
    gen_vm(ctx, image, host="a")
    other = tmp_path / "other.raw"
    other.write_bytes(b"secret" * 100)
    hypervisor = ctx.extensions["nube"].hypervisor
    start = hypervisor.start

    def start_while_a_host_rewrites(host, name):
        subprocess.run(
            ["qemu-img", "rebase", "-u", "-F", "raw", "-b", str(other), str(disk(ctx))],
            check=True,
        )
        return start(host, name)

    monkeypatch.setattr(hypervisor, "start", start_while_a_host_rewrites)
    with pytest.raises(core.OperationFailed, match="vm1 did not start: .*names backing file"):
        core.startVm("vm1")
    assert hypervisor.domain_state(host_row("a"), "vm1") != "running"
    assert core.listVms()[0]["state"] == "stopped"
