"""The lab's hosts are separate machines on a network of their own: a VXLAN overlay made by
hand between two lab hosts carries traffic between two small "guest" namespaces, and none of
it, nor any underlay packet, shows on any of the machine's own interfaces (nftables counters
on each of them), while the hosts' underlay interfaces (data0) count it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from tests.lab import lab
from tests.wait import wait_for

UNDERLAY = "198.18.0.0/15"
OVERLAY = "192.0.2.0/24"  # TEST-NET-1: routed nowhere
VNI, VXLAN_PORT, CONTROL_PORT, ECHO_PORT = 4242, 4789, 4790, 7777
TABLE = f"{lab.NFT_TABLE_PREFIX}isolation_{os.getpid()}"  # down removes it if we crash
PAYLOAD = os.urandom(200_000)

ECHO_SERVER = """
import socket, sys
server = socket.create_server((sys.argv[1], int(sys.argv[2])))
while True:
    conn, _ = server.accept()
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)
"""
ECHO_CLIENT = """
import socket, sys
data = sys.stdin.buffer.read()
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5) as conn:
    conn.sendall(data)
    conn.shutdown(socket.SHUT_WR)
    back = b""
    while chunk := conn.recv(65536):
        back += chunk
sys.stdout.buffer.write(back)
"""


def ip(*args, check=True):
    """Run ip(8); its output."""
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check).stdout


def nft(script):
    """Load an nftables script."""
    subprocess.run(["nft", "-f", "-"], input=script, text=True, check=True)


def root_interfaces():
    """The names of the machine's own network interfaces."""
    return sorted(link["ifname"] for link in json.loads(ip("-j", "link", "show")))


def counting_table(interfaces):
    """A netdev table counting, on every interface of the machine's namespace, both ways,
    what the lab must keep inside: underlay and overlay addresses, VXLAN; plus a control."""
    matches = {
        "underlay": [f"ip saddr {UNDERLAY}", f"ip daddr {UNDERLAY}"]
        + [f"arp saddr ip {UNDERLAY}", f"arp daddr ip {UNDERLAY}"],
        "overlay": [f"ip saddr {OVERLAY}", f"ip daddr {OVERLAY}"]
        + [f"arp saddr ip {OVERLAY}", f"arp daddr ip {OVERLAY}"],
        "vxlan": [f"udp dport {VXLAN_PORT}", f"udp sport {VXLAN_PORT}"],
        "control": [f"udp dport {CONTROL_PORT}"],
    }
    rules = "".join(
        f'    {match} counter comment "{name}"\n'
        for name, lines in matches.items()
        for match in lines
    )
    devices = ", ".join(f'"{name}"' for name in interfaces)
    chains = "".join(
        f"  chain {hook} {{\n    type filter hook {hook} devices = {{ {devices} }} priority 0;\n"
        f"{rules}  }}\n"
        for hook in ("ingress", "egress")
    )
    return f"table netdev {TABLE} {{\n{chains}}}\n"


def counters():
    """{comment: packets} summed over the table's rules."""
    listing = subprocess.run(
        ["nft", "-j", "list", "table", "netdev", TABLE], capture_output=True, text=True, check=True
    )
    totals = {}
    for item in json.loads(listing.stdout)["nftables"]:
        rule = item.get("rule")
        if rule:
            packets = sum(e["counter"]["packets"] for e in rule["expr"] if "counter" in e)
            totals[rule["comment"]] = totals.get(rule["comment"], 0) + packets
    return totals


def data0_bytes(netns):
    """(received, sent) bytes of a lab host's underlay interface."""
    [link] = json.loads(ip("-n", netns, "-s", "-j", "link", "show", "data0"))
    stats = link["stats64"]
    return stats["rx"]["bytes"], stats["tx"]["bytes"]


def overlay_side(host, peer, guest, guest_address):
    """In lab host `host`'s namespace: a VXLAN device over data0 to `peer`'s data address, a
    bridge, and a veth into a new namespace `guest` holding `guest_address`."""
    netns = host["netns"]
    ip("netns", "add", guest)
    ip("-n", netns, "link", "add", "isovx0", "type", "vxlan", "id", str(VNI),
       "local", host["data_address"], "remote", peer["data_address"],
       "dstport", str(VXLAN_PORT), "dev", "data0")  # fmt: skip
    ip("-n", netns, "link", "add", "isobr0", "type", "bridge")
    ip("-n", netns, "link", "add", "isogv0", "mtu", "1450", "type", "veth",
       "peer", "name", "eth0", "mtu", "1450", "netns", guest)  # fmt: skip
    for device in ("isovx0", "isogv0"):
        ip("-n", netns, "link", "set", device, "master", "isobr0", "up")
    ip("-n", netns, "link", "set", "isobr0", "up")
    ip("-n", guest, "addr", "add", f"{guest_address}/24", "dev", "eth0")
    ip("-n", guest, "link", "set", "eth0", "up")
    ip("-n", guest, "link", "set", "lo", "up")


def remove_side(host, guest):
    """Delete what overlay_side made."""
    for device in ("isogv0", "isovx0", "isobr0"):
        ip("-n", host["netns"], "link", "del", device, check=False)
    ip("netns", "delete", guest, check=False)


def echo_through_overlay(guest, address):
    """Send PAYLOAD from `guest` to the echo server at address; what came back."""
    client = subprocess.run(
        ["ip", "netns", "exec", guest, sys.executable, "-c", ECHO_CLIENT, address, str(ECHO_PORT)],
        input=PAYLOAD,
        capture_output=True,
        timeout=30,
    )
    return client.stdout if client.returncode == 0 else None


def test_overlay_traffic_between_lab_hosts_never_reaches_the_machines_interfaces(lab_hosts):
    host_a, host_b = lab_hosts[:2]
    guest_a, guest_b = f"nube-iso-a-{os.getpid()}", f"nube-iso-b-{os.getpid()}"
    interfaces = root_interfaces()
    server = None
    nft(counting_table(interfaces))
    try:
        overlay_side(host_a, host_b, guest_a, "192.0.2.1")
        overlay_side(host_b, host_a, guest_b, "192.0.2.2")
        before = {h["netns"]: data0_bytes(h["netns"]) for h in (host_a, host_b)}
        server = subprocess.Popen(
            ["ip", "netns", "exec", guest_b, sys.executable, "-c", ECHO_SERVER, "192.0.2.2",
             str(ECHO_PORT)],
        )  # fmt: skip
        echoed = wait_for(lambda: echo_through_overlay(guest_a, "192.0.2.2"), timeout=30,
                          message="an echo across the overlay")  # fmt: skip
        assert echoed == PAYLOAD
        # The control: the table does see the machine's own traffic (loopback here).
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.sendto(b"control", ("127.0.0.1", CONTROL_PORT))
        seen = wait_for(lambda: counters()["control"] and counters(), message="the control")
        assert seen == {"underlay": 0, "overlay": 0, "vxlan": 0, "control": seen["control"]}
        for netns, (received, sent) in before.items():
            now_received, now_sent = data0_bytes(netns)
            # the payload went there and back, inside VXLAN, over data0 (packet counts say
            # less: segmentation offload counts a burst as one)
            grown = (now_received - received, now_sent - sent)
            assert min(grown) > len(PAYLOAD), (netns, grown)
        assert root_interfaces() == interfaces  # nothing the lab made appeared here
    finally:
        if server:
            server.kill()
            server.wait()
        remove_side(host_a, guest_a)
        remove_side(host_b, guest_b)
        subprocess.run(["nft", "delete", "table", "netdev", TABLE], check=False)
    assert TABLE not in subprocess.run(["nft", "list", "tables"], capture_output=True,
                                       text=True).stdout  # fmt: skip
    assert guest_a not in ip("netns", "list") and guest_b not in ip("netns", "list")


BRIDGED_DOMAIN = """<domain type='qemu'><name>nube-bridged-probe</name>
<memory unit='MiB'>32</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os>
<devices><interface type='bridge'><source bridge='isobr1'/></interface></devices></domain>"""


def test_libvirt_in_a_lab_host_plugs_a_guest_into_a_bridge_made_in_its_namespace(
    lab_hosts, tmp_path
):
    """libvirt plugs a guest into a bridge made in the host's namespace; the guest's tap
    appears there, never in the machine's namespace; and the host's /sys/class/net (what
    Ansible's interface facts and libvirt's bridge queries read) lists the host's own
    interfaces, not the machine's."""
    host = lab_hosts[0]
    index = int(host["name"].removeprefix("lab"))
    interfaces = root_interfaces()
    xml = tmp_path / "bridged.xml"
    xml.write_text(BRIDGED_DOMAIN)
    xml.chmod(0o644)
    tmp_path.chmod(0o755)
    virsh = ["virsh", "-c", "qemu:///system"]
    ip("-n", host["netns"], "link", "add", "isobr1", "type", "bridge")
    try:
        lab.in_host(index, *virsh, "create", str(xml))
        listing = lab.in_host(index, *virsh, "domiflist", "nube-bridged-probe").stdout
        [tap] = [line.split()[0] for line in listing.splitlines() if "isobr1" in line]
        on_bridge = json.loads(ip("-n", host["netns"], "-j", "link", "show", "master", "isobr1"))
        assert [link["ifname"] for link in on_bridge] == [tap]
        in_sysfs = lab.in_host(index, "ls", "/sys/class/net").stdout.split()
        assert sorted(in_sysfs) == sorted(["lo", "data0", "isobr1", tap])
        assert root_interfaces() == interfaces
    finally:
        lab.in_host(index, *virsh, "destroy", "nube-bridged-probe", check=False)
        ip("-n", host["netns"], "link", "del", "isobr1", check=False)
