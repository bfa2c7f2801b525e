"""Domain XML rendering: validation, escaping, and acceptance by real libvirt."""

import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from app.domain_xml import _environment, render_domain
from app.errors import InvalidInput

TEMPLATES = str(Path(__file__).resolve().parents[2] / "domain_templates")
DISK = "/mnt/iaas/vms/web1.qcow2"
UUID = "5e749d98-922b-420c-b03f-40efb02a6b45"


def vm(**changes):
    return {"id": "web1", "mem": 512, "vcpus": 2, **changes}


def host(**changes):
    return {"kvm": True, "network": "default", **changes}


def render(vm_=None, host_=None, disk=DISK):
    return ET.fromstring(render_domain(vm_ or vm(), host_ or host(), disk, TEMPLATES))


def test_kvm_domain():
    dom = render(vm(uuid=UUID))
    assert dom.get("type") == "kvm"
    assert dom.findtext("name") == "web1"
    assert dom.findtext("uuid") == UUID
    assert dom.find("memory").get("unit") == "MiB"
    assert dom.findtext("memory") == dom.findtext("currentMemory") == "512"
    assert dom.findtext("vcpu") == "2"
    assert dom.find("cpu") is None  # host-passthrough aborts QEMU under nested KVM
    disk = dom.find("devices/disk")
    assert disk.find("source").get("file") == DISK
    assert disk.find("target").attrib == {"dev": "vda", "bus": "virtio"}
    assert disk.find("driver").attrib == {"name": "qemu", "type": "qcow2", "cache": "none"}
    assert dom.find("devices/graphics").attrib == {
        "type": "vnc",
        "autoport": "yes",
        "listen": "127.0.0.1",
    }
    assert dom.find("devices/serial").get("type") == "pty"


def test_qemu_domain_has_no_host_cpu_and_no_uuid_unless_given():
    dom = render(host_=host(kvm=False))
    assert dom.get("type") == "qemu"
    assert dom.find("cpu") is None
    assert dom.find("uuid") is None
    assert render(host_=host(kvm=0)).get("type") == "qemu"  # SQLite booleans


@pytest.mark.parametrize(
    "network, kind, attr, name",
    [
        ("default", "network", "network", "default"),
        ("lab-net_2.0", "network", "network", "lab-net_2.0"),
        ("bridge:br0", "bridge", "bridge", "br0"),
    ],
)
def test_network_forms(network, kind, attr, name):
    nics = render(host_=host(network=network)).findall("devices/interface")
    assert len(nics) == 1
    assert nics[0].get("type") == kind
    assert nics[0].find("source").attrib == {attr: name}
    assert nics[0].find("model").get("type") == "virtio"


def test_no_network():
    assert render(host_=host(network="none")).findall("devices/interface") == []


@pytest.mark.parametrize(
    "vm_, host_, disk",
    [
        (vm(id="../web1"), host(), DISK),
        (vm(id="web 1"), host(), DISK),
        (vm(id="</name>"), host(), DISK),
        (vm(mem=8), host(), DISK),
        (vm(mem=4_194_305), host(), DISK),
        (vm(mem="512"), host(), DISK),
        (vm(vcpus=0), host(), DISK),
        (vm(vcpus=257), host(), DISK),
        (vm(vcpus=True), host(), DISK),
        (vm(uuid="not-a-uuid"), host(), DISK),
        (vm(), host(kvm="yes"), DISK),
        (vm(), host(network="def'ault"), DISK),
        (vm(), host(network='a"b'), DISK),
        (vm(), host(network="bridge:br0'/><x"), DISK),
        (vm(), host(network="bridge:a-very-long-bridge-name"), DISK),
        (vm(), host(network=""), DISK),
        (vm(), host(network=None), DISK),
        (vm(), host(), "vms/web1.qcow2"),
        (vm(), host(), "/mnt/iaas/../etc/shadow"),
        (vm(), host(), "/mnt/iaas/vms/a\x00b"),
        (vm(), host(), "/mnt/iaas/vms/a\nb"),
        (vm(), host(), None),
        ({"id": "web1"}, host(), DISK),
        (vm(), {"kvm": True}, DISK),
    ],
)
def test_bad_values_are_refused(vm_, host_, disk):
    with pytest.raises(InvalidInput):
        render_domain(vm_, host_, disk, TEMPLATES)


HOSTILE = "</name><devices><disk file='/etc/shadow'/>\"&"


def test_template_escapes_everything():
    # validation refuses such values; this proves the template would still be safe
    context = {
        "domain_type": HOSTILE,
        "name": HOSTILE,
        "uuid": HOSTILE,
        "mem": HOSTILE,
        "vcpus": HOSTILE,
        "kvm": True,
        "nic_type": "bridge",
        "nic_source": HOSTILE,
        "mac": HOSTILE,
        "disk_path": HOSTILE,
        "backing": [{"path": HOSTILE, "format": HOSTILE}],
        "seed_path": HOSTILE,
        "console_log": HOSTILE,
        "volumes": [
            {"path": HOSTILE, "backing": [], "target": HOSTILE, "serial": HOSTILE, "slot": 9},
        ],
        "nics": [],
    }
    xml = _environment(TEMPLATES).get_template("vm.xml.j2").render(**context)
    dom = ET.fromstring(xml)
    assert dom.get("type") == HOSTILE
    assert dom.findtext("name") == HOSTILE
    assert dom.find("devices/disk/source").get("file") == HOSTILE
    assert dom.find("devices/disk/backingStore/source").get("file") == HOSTILE
    assert dom.find("devices/disk/backingStore/format").get("type") == HOSTILE
    assert dom.find("devices/interface/source").get("bridge") == HOSTILE
    assert dom.find("devices/interface/mac").get("address") == HOSTILE
    volume = dom.findall("devices/disk")[1]
    assert volume.find("target").get("dev") == HOSTILE
    assert volume.findtext("serial") == HOSTILE
    assert dom.find("devices/serial/log").get("file") == HOSTILE
    assert [d.get("device") for d in dom.findall("devices/disk")] == ["disk", "disk", "cdrom"]


def test_seed_console_log_and_agent_channel():
    seed, log = "/mnt/iaas/vms/web1-seed.iso", "/mnt/iaas/vms/web1.console.log"
    xml = render_domain(vm(uuid=UUID), host(), DISK, TEMPLATES, seed_path=seed, console_log=log)
    dom = ET.fromstring(xml)
    cdrom = dom.find("devices/disk[@device='cdrom']")
    assert cdrom.find("source").get("file") == seed
    assert cdrom.find("target").get("bus") == "ide"  # the cloud kernel has no SATA driver
    assert cdrom.find("readonly") is not None
    assert dom.find("devices/serial/log").attrib == {"file": log, "append": "on"}
    channel = dom.find("devices/channel/target")
    assert channel.get("name") == "org.qemu.guest_agent.0"


def test_without_seed_or_log_there_is_neither():
    dom = render()
    assert dom.find("devices/disk[@device='cdrom']") is None
    assert dom.find("devices/serial/log") is None


@pytest.mark.parametrize(
    ("kvm", "virt_type", "expected"),
    [
        (True, "auto", "kvm"),
        (False, "auto", "qemu"),
        (True, "qemu", "qemu"),
        (False, "kvm", "kvm"),
    ],
)
def test_virt_type_chooses_the_domain_type(kvm, virt_type, expected):
    xml = render_domain(vm(), host(kvm=kvm), DISK, TEMPLATES, virt_type=virt_type)
    assert ET.fromstring(xml).get("type") == expected


@pytest.mark.parametrize(
    "files",
    [
        {"virt_type": "xen"},
        {"seed_path": "relative.iso"},
        {"console_log": "/mnt/iaas/../etc/passwd"},
    ],
)
def test_bad_files_or_virt_type_are_refused(files):
    with pytest.raises(InvalidInput):
        render_domain(vm(), host(), DISK, TEMPLATES, **files)


def test_mac_goes_on_the_nic_and_must_be_one():
    xml = render_domain(vm(mac="52:54:00:ab:cd:ef"), host(network="default"), DISK, TEMPLATES)
    assert ET.fromstring(xml).find("devices/interface/mac").get("address") == "52:54:00:ab:cd:ef"
    with pytest.raises(InvalidInput):
        render_domain(vm(mac="52:54:00:ab:cd:ef'/>"), host(network="default"), DISK, TEMPLATES)


def test_disk_path_quote_is_escaped():
    disk = '/mnt/iaas/vms/it\'s <here> & "there".qcow2'
    assert render(disk=disk).find("devices/disk/source").get("file") == disk


def test_libvirt_accepts_it():
    libvirt = pytest.importorskip("libvirt")
    xml = render_domain(
        vm(uuid=UUID, mac="52:54:00:01:02:03"),
        host(network="bridge:br0"),
        DISK,
        TEMPLATES,
        seed_path="/mnt/iaas/vms/web1-seed.iso",
        console_log="/mnt/iaas/vms/web1.console.log",
    )
    conn = libvirt.open("test:///default")
    try:
        dom = conn.defineXML(xml)
        try:
            desc = ET.fromstring(dom.XMLDesc())
            assert desc.findtext("uuid") == UUID
            assert desc.findtext("memory") == str(512 * 1024)  # libvirt reports KiB
            assert desc.find("devices/disk/source").get("file") == DISK
        finally:
            dom.undefine()
    finally:
        conn.close()


@pytest.mark.skipif(not shutil.which("virt-xml-validate"), reason="libvirt-clients not installed")
@pytest.mark.parametrize("kvm, network", [(True, "default"), (False, "bridge:br0"), (True, "none")])
def test_matches_the_libvirt_schema(tmp_path, kvm, network):
    path = tmp_path / "dom.xml"
    xml = render_domain(
        vm(uuid=UUID, mac=None if network == "none" else "52:54:00:01:02:03"),
        host(kvm=kvm, network=network),
        DISK,
        TEMPLATES,
        seed_path="/mnt/iaas/vms/web1-seed.iso",
        console_log="/mnt/iaas/vms/web1.console.log",
    )
    path.write_text(xml)
    res = subprocess.run(
        ["virt-xml-validate", str(path), "domain"], capture_output=True, text=True, check=False
    )
    assert res.returncode == 0, res.stderr
