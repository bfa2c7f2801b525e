"""A host's definition compared with Nube's rendering (issue 20, finding 1): what libvirt adds
passes, any device that reaches something Nube did not render is named."""

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from app.domain_devices import foreign_devices
from app.domain_xml import render_domain

TEMPLATES = str(Path(__file__).resolve().parents[2] / "domain_templates")
RUNNING = (Path(__file__).resolve().parents[1] / "fixtures" / "domains" / "running.xml").read_text()
UUID = "5e749d98-922b-420c-b03f-40efb02a6b45"
DISK = "/mnt/iaas/vms/x1.qcow2"
BASE = ("/mnt/iaas/images/base.qcow2", "qcow2")
LOG = "/mnt/iaas/vms/x1.console.log"


def rendered(network="none", backing=(BASE,), **vm):
    """Nube's rendering of the fixture's VM."""
    return render_domain(
        {"id": "x1", "mem": 64, "vcpus": 1, "uuid": UUID, **vm},
        {"kvm": False, "network": network},
        DISK,
        TEMPLATES,
        backing=list(backing),
        console_log=LOG,
    )


def with_device(xml, device):
    """xml with one more device."""
    return xml.replace("</devices>", f"{device}</devices>")


def test_what_libvirt_adds_to_a_running_domain_passes():
    assert foreign_devices(RUNNING, rendered()) == []


def test_libvirt_accepts_the_rendering_and_its_own_definition_passes():
    libvirt = pytest.importorskip("libvirt")
    conn = libvirt.open("test:///default")
    try:
        dom = conn.defineXML(rendered(network="default", mac="52:54:00:01:02:03"))
        try:
            defined = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
            chain = ET.fromstring(defined).find("devices/disk/backingStore")
            assert chain.find("source").get("file") == BASE[0]
            assert chain.find("backingStore") is not None  # the chain ends there
            assert foreign_devices(defined, rendered(network="default")) == []
            assert "interface" in foreign_devices(defined, rendered(network="bridge:br0"))[0]
        finally:
            dom.undefine()
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("device", "named"),
    [
        (
            "<disk type='block' device='disk'><source dev='/dev/sda'/><target dev='vdb'/></disk>",
            "/dev/sda",
        ),
        (
            "<filesystem type='mount'><source dir='/'/><target dir='root'/></filesystem>",
            "<filesystem",
        ),
        (
            "<hostdev mode='subsystem' type='usb'><source><vendor id='0x1'/></source></hostdev>",
            "<hostdev",
        ),
        (
            "<redirdev bus='usb' type='tcp'><source mode='connect' host='10.0.0.1' service='4000'/>"
            "</redirdev>",
            "<redirdev",
        ),
        ("<smartcard mode='passthrough' type='tcp'/>", "<smartcard"),
        (
            "<serial type='file'><source path='/etc/shadow'/><target port='1'/></serial>",
            "/etc/shadow",
        ),
        (
            "<channel type='unix'><source mode='connect' path='/run/libvirt/libvirt-sock'/>"
            "<target type='virtio' name='org.qemu.guest_agent.0'/></channel>",
            "libvirt-sock",
        ),
        ("<interface type='direct'><source dev='eth0' mode='bridge'/></interface>", "direct"),
        ("<interface type='ethernet'><script path='/tmp/x'/></interface>", "ethernet"),
        ("<graphics type='vnc' listen='0.0.0.0'/>", "0.0.0.0"),
        ("<input type='evdev'><source dev='/dev/input/event0'/></input>", "/dev/input/event0"),
        ("<shmem name='x'/>", "<shmem"),
        (
            "<tpm model='tpm-tis'><backend type='passthrough'><device path='/dev/tpm0'/>"
            "</backend></tpm>",
            "<tpm",
        ),
        ("<video><model type='virtio'/><rom file='/etc/shadow'/></video>", "<video"),
    ],
)
def test_a_device_nube_did_not_render_is_named(device, named):
    found = foreign_devices(with_device(RUNNING, device), rendered())
    assert len(found) == 1 and named in found[0]


def test_a_disk_source_that_differs_is_named():
    changed = RUNNING.replace("/mnt/iaas/vms/x1.qcow2", "/dev/sda")
    assert "/dev/sda" in foreign_devices(changed, rendered())[0]


def test_a_disk_source_with_more_inside_it_is_named():
    socket = (
        "<reservations managed='no'><source type='unix' path='/run/x.sock' mode='client'/>"
        "</reservations></source>"
    )
    changed = RUNNING.replace(
        "<source file='/mnt/iaas/vms/x1.qcow2' index='1'/>",
        f"<source file='/mnt/iaas/vms/x1.qcow2' index='1'>{socket}",
    )
    assert "x1.qcow2" in foreign_devices(changed, rendered())[0]


def test_a_nic_loading_a_rom_file_is_named():
    nic = "<interface type='network'><source network='default'/>{}</interface>"
    expected = rendered(network="default")
    assert foreign_devices(with_device(RUNNING, nic.format("")), expected) == []
    found = foreign_devices(with_device(RUNNING, nic.format("<rom file='/etc/shadow'/>")), expected)
    assert len(found) == 1 and "<interface" in found[0]


def test_a_console_log_elsewhere_is_named():
    changed = RUNNING.replace(f"<log file='{LOG}' append='on'/>", "<log file='/etc/motd'/>", 1)
    assert "<serial" in foreign_devices(changed, rendered())[0]


def test_a_chain_libvirt_read_from_a_rebased_header_is_named():
    changed = RUNNING.replace("/mnt/iaas/images/base.qcow2", "/etc/shadow")
    assert "/etc/shadow" in foreign_devices(changed, rendered())[0]
    # a relative backing path libvirt resolved beside the overlay is the same file
    same = RUNNING.replace("/mnt/iaas/images/base.qcow2", "/mnt/iaas/vms/../images/base.qcow2")
    assert foreign_devices(same, rendered()) == []


def test_parts_outside_devices_that_reach_the_host_are_named():
    commandline = (
        "<qemu:commandline xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>"
        "<qemu:arg value='-x'/></qemu:commandline></domain>"
    )
    found = foreign_devices(RUNNING.replace("</domain>", commandline), rendered())
    assert found == ["<qemu:commandline>"]
    kernel = RUNNING.replace("<boot dev='hd'/>", "<kernel>/etc/shadow</kernel>")
    assert foreign_devices(kernel, rendered()) == ["<os><kernel>"]
    root = RUNNING.replace("type='dynamic' model='dac' relabel='yes'", "type='none'")
    assert foreign_devices(root, rendered()) == ["<seclabel type='none'>"]


def test_an_emulator_elsewhere_acpi_tables_and_fw_cfg_files_are_named():
    """Found by the second reading: files outside the device list QEMU runs or reads in."""
    evil = RUNNING.replace(
        "<emulator>/usr/bin/qemu-system-x86_64</emulator>",
        "<emulator>/mnt/iaas/vms/evil</emulator>",
    )
    assert foreign_devices(evil, rendered()) == ["<emulator>/mnt/iaas/vms/evil</emulator>"]
    table = RUNNING.replace(
        "<boot dev='hd'/>", "<boot dev='hd'/><acpi><table type='slic'>/etc/shadow</table></acpi>"
    )
    assert foreign_devices(table, rendered()) == ["<os><acpi><table>"]
    fw_cfg = RUNNING.replace(
        "</domain>",
        "<sysinfo type='fwcfg'><entry name='opt/x' file='/etc/shadow'/></sysinfo></domain>",
    )
    assert foreign_devices(fw_cfg, rendered()) == ["<sysinfo><entry file='/etc/shadow'>"]
    kvm = RUNNING.replace("/usr/bin/qemu-system-x86_64", "/usr/libexec/qemu-kvm")
    assert foreign_devices(kvm, rendered()) == []  # another distribution's system QEMU
