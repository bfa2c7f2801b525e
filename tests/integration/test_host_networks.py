"""plays/files/nube_networks.py on a real kernel, in network namespaces the tests make: three
"hosts" joined by an underlay bridge (198.18.0.0/24), each with a "guest" namespace whose veth
the test plugs into the host's nbr bridge (10.77.0.0/24).

Every ip/bridge command runs inside a test namespace (`ip -n`, `ip netns exec`); the machine's
own namespace is checked unchanged after each test, and the namespaces are deleted by name even
when a test fails. No lab host, libvirtd or guest VM is used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.adapters.ansible import _write_unsafe_yaml
from tests.wait import wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
]

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "plays" / "files" / "nube_networks.py"
PING = Path(__file__).resolve().parent / "icmp_ping.py"
PREFIX = f"nubetest-net{os.getpid()}"
VNI = 4100
HOSTS = 3
FLOOD_MAC = "00:00:00:00:00:00"


def sh(*argv, check=True):
    """Run a command; its CompletedProcess (text)."""
    return subprocess.run(argv, capture_output=True, text=True, check=check)


def root_links():
    """The links of the machine's own namespace (read only)."""
    return sorted(line.split()[0] for line in sh("ip", "-br", "link").stdout.splitlines())


def leftover_namespaces():
    """The network namespaces these tests made and not yet deleted."""
    names = [line.split()[0] for line in sh("ip", "netns", "list").stdout.splitlines()]
    return [name for name in names if name.startswith(f"{PREFIX}-")]


class Overlay:
    """The namespaces of one test, and what it runs in them."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.underlay = f"{PREFIX}-ul"
        self.hosts = [f"{PREFIX}-h{i}" for i in range(1, HOSTS + 1)]
        self.guests = [f"{PREFIX}-g{i}" for i in range(1, HOSTS + 1)]
        self.addresses = [f"198.18.0.{i + 1}" for i in range(1, HOSTS + 1)]
        self.guest_addresses = [f"10.77.0.{i}" for i in range(1, HOSTS + 1)]

    def ip(self, ns, *args):
        """`ip` inside namespace ns; its stdout."""
        return sh("ip", "-n", ns, *args).stdout

    def build(self, made):
        """Make the namespaces, the underlay and the guests (their veths not plugged yet)."""
        for ns in (self.underlay, *self.hosts, *self.guests):
            sh("ip", "netns", "add", ns)
            made.append(ns)
        self.ip(self.underlay, "link", "add", "ul0", "type", "bridge")
        self.ip(self.underlay, "link", "set", "ul0", "up")
        for index, host in enumerate(self.hosts):
            port = f"ul{index + 1}"
            # the veth's other end is made straight in the host's namespace
            self.ip(
                self.underlay, "link", "add", port, "type", "veth", "peer", "eth0", "netns", host
            )
            self.ip(self.underlay, "link", "set", port, "master", "ul0", "up")
            self.ip(host, "addr", "add", f"{self.addresses[index]}/24", "dev", "eth0")
            self.ip(host, "link", "set", "eth0", "up")
            guest = self.guests[index]
            self.ip(host, "link", "add", "vg0", "type", "veth", "peer", "eth0", "netns", guest)
            self.ip(host, "link", "set", "vg0", "up")
            self.ip(guest, "addr", "add", f"{self.guest_addresses[index]}/24", "dev", "eth0")
            self.ip(guest, "link", "set", "eth0", "up")

    def state(self, index, peers=None, **network):
        """Host index's desired state: one vxlan network whose peers are the other hosts."""
        if peers is None:
            peers = [a for i, a in enumerate(self.addresses) if i != index]
        vxlan = {"type": "vxlan", "vni": VNI, "peers": peers, "mtu": 1450, **network}
        return {"local": self.addresses[index], "networks": [vxlan]}

    def run(self, index, state):
        """Run the script in host index's namespace with this state: (rc, output, stderr)."""
        path = self.tmp / f"state-h{index}.json"
        path.write_text(json.dumps(state))
        env = {**os.environ, "NUBE_NETWORKS_LOCK": str(self.tmp / "lock")}
        result = subprocess.run(
            ["ip", "netns", "exec", self.hosts[index], "python3", str(SCRIPT), str(path)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        output = json.loads(result.stdout) if result.stdout.strip() else None
        return result.returncode, output, result.stderr

    def apply(self, index, state):
        """Run the script and expect success; its JSON line."""
        rc, output, stderr = self.run(index, state)
        assert rc == 0, stderr
        return output

    def shape(self, index):
        """What the script may change on host index: each link's index, kind, MTU, master, flags."""
        return {
            name: (
                link["ifindex"],
                (link.get("linkinfo") or {}).get("info_kind"),
                link["mtu"],
                link.get("master"),
                link["flags"],
            )
            for name, link in self.links(index).items()
        }

    def links(self, index):
        """Host index's links by name, as `ip -j -d link show` says."""
        links = json.loads(self.ip(self.hosts[index], "-j", "-d", "link", "show"))
        return {link["ifname"]: link for link in links}

    def flood(self, index, device=f"nvx{VNI}"):
        """The destinations of device's all-zeros FDB entries on host index."""
        entries = json.loads(sh("bridge", "-n", self.hosts[index], "-j", "fdb", "show").stdout)
        return sorted(
            entry["dst"]
            for entry in entries
            if entry.get("ifname") == device and entry["mac"] == FLOOD_MAC and "dst" in entry
        )

    def plug(self, index, bridge=f"nbr{VNI}"):
        """Plug host index's guest veth into a bridge (what libvirt does with a VM's tap)."""
        self.ip(self.hosts[index], "link", "set", "vg0", "master", bridge)

    def ping(self, source, target, seconds=5):
        """Guest source's echo request to guest target's address (returncode 0: answered)."""
        ns = self.guests[source]
        address = self.guest_addresses[target]
        return sh(
            "ip", "netns", "exec", ns, "python3", str(PING), address, str(seconds), check=False
        )


@pytest.fixture
def overlay(tmp_path):
    """Three hosts and their guests in fresh namespaces, deleted by name afterwards; the
    machine's own namespace must be the same after the test as before it."""
    before = root_links()
    made = []
    net = Overlay(tmp_path)
    try:
        net.build(made)
        yield net
    finally:
        for ns in reversed(made):
            sh("ip", "netns", "del", ns, check=False)
    assert leftover_namespaces() == []
    assert root_links() == before


def nube_devices(links):
    """The names of Nube's devices among links."""
    return sorted(name for name in links if name[:3] in ("nbr", "nvx") and name[3:].isdigit())


def assert_network(net, index, peers, mtu=1450):
    """Host index has network VNI exactly as specified."""
    links = net.links(index)
    vxlan, bridge = links[f"nvx{VNI}"], links[f"nbr{VNI}"]
    data = vxlan["linkinfo"]["info_data"]
    assert vxlan["linkinfo"]["info_kind"] == "vxlan"
    assert (data["id"], data["port"], data["local"], data["learning"]) == (
        VNI,
        4789,
        net.addresses[index],
        True,
    )
    assert "group" not in data and "remote" not in data
    assert bridge["linkinfo"]["info_kind"] == "bridge"
    assert vxlan["master"] == f"nbr{VNI}"
    assert "UP" in vxlan["flags"] and "UP" in bridge["flags"]
    assert (vxlan["mtu"], bridge["mtu"]) == (mtu, mtu)
    assert net.flood(index) == sorted(peers)


def test_overlay_joins_guests_on_different_hosts(overlay):
    net = overlay
    assert net.ping(0, 1, seconds=1).returncode == 1  # no network yet: the control
    for index in range(HOSTS):
        output = net.apply(index, net.state(index))
        assert output["changed"] is True and output["kept"] == []
        assert any(action.startswith(f"ip link add nvx{VNI}") for action in output["actions"])
        assert_network(net, index, [a for i, a in enumerate(net.addresses) if i != index])
        net.plug(index)
    for source, target in ((0, 1), (0, 2), (2, 1)):
        result = net.ping(source, target)
        assert result.returncode == 0, f"guest {source + 1} does not reach guest {target + 1}"
    for index in range(HOSTS):
        assert net.apply(index, net.state(index)) == {"changed": False, "actions": [], "kept": []}


def test_peers_in_the_fdb_follow_the_state(overlay):
    net = overlay
    net.apply(0, net.state(0))
    assert net.flood(0) == ["198.18.0.3", "198.18.0.4"]
    output = net.apply(0, net.state(0, peers=["198.18.0.3"]))
    # the flood entry, then the VXLAN port filter, which lets only the peers in
    assert output["actions"][0] == f"bridge fdb del {FLOOD_MAC} dev nvx{VNI} dst 198.18.0.4"
    assert len(output["actions"]) == 2 and output["actions"][1].startswith("nft ")
    assert net.flood(0) == ["198.18.0.3"]
    output = net.apply(0, net.state(0, peers=["198.18.0.4"]))
    assert net.flood(0) == ["198.18.0.4"]
    assert output["changed"] is True and len(output["actions"]) == 3
    net.apply(0, net.state(0, peers=[]))
    assert net.flood(0) == []
    assert_network(net, 0, [])


def test_drift_on_the_host_is_repaired(overlay):
    net = overlay
    net.apply(0, net.state(0))
    host = net.hosts[0]
    bridge_index = net.links(0)[f"nbr{VNI}"]["ifindex"]
    net.ip(host, "link", "set", f"nvx{VNI}", "nomaster")
    net.ip(host, "link", "set", f"nbr{VNI}", "down")
    net.ip(host, "link", "set", f"nbr{VNI}", "mtu", "1500")
    sh("bridge", "-n", host, "fdb", "append", FLOOD_MAC, "dev", f"nvx{VNI}", "dst", "198.18.0.9")
    output = net.apply(0, net.state(0))
    assert output["changed"] is True
    assert_network(net, 0, ["198.18.0.3", "198.18.0.4"])
    assert net.links(0)[f"nbr{VNI}"]["ifindex"] == bridge_index  # mended, not made again
    # a VXLAN device with the wrong UDP port is made again; a new MTU is set in place
    net.ip(host, "link", "del", f"nvx{VNI}")
    net.ip(host, "link", "add", f"nvx{VNI}", "type", "vxlan", "id", str(VNI), "dstport", "8472")
    output = net.apply(0, net.state(0, mtu=1400))
    assert f"ip link del nvx{VNI}" in output["actions"]
    assert_network(net, 0, ["198.18.0.3", "198.18.0.4"], mtu=1400)
    assert net.links(0)[f"nbr{VNI}"]["ifindex"] == bridge_index
    assert net.apply(0, net.state(0, mtu=1400))["changed"] is False


def test_unwanted_devices_go_but_a_bridge_with_a_guest_stays(overlay):
    net = overlay
    for index in (0, 1):
        net.apply(index, net.state(index))
    net.plug(0)
    # host 2: a stale network of an old run, and devices that are not Nube's
    h2 = net.hosts[1]
    net.ip(h2, "link", "add", "nbr7", "type", "bridge")
    net.ip(h2, "link", "add", "nvx7", "type", "vxlan", "id", "7", "dstport", "4789")
    net.ip(h2, "link", "set", "nvx7", "master", "nbr7")
    net.ip(h2, "link", "add", "br0", "type", "bridge")
    net.ip(h2, "link", "add", "nbrx", "type", "bridge")
    output = net.apply(1, {"networks": []})
    assert output["changed"] is True and output["kept"] == []
    links = net.links(1)
    assert nube_devices(links) == []
    assert {"br0", "nbrx", "vg0", "eth0"} <= set(links)
    assert net.apply(1, {"networks": []}) == {"changed": False, "actions": [], "kept": []}

    # host 1: its guest is still plugged in, so its network stays whole and is reported
    output = net.apply(0, {"networks": []})
    assert output["changed"] is False
    assert [kept["device"] for kept in output["kept"]] == [f"nbr{VNI}", f"nvx{VNI}"]
    assert "vg0" in output["kept"][0]["reason"]
    assert nube_devices(net.links(0)) == [f"nbr{VNI}", f"nvx{VNI}"]
    net.ip(net.hosts[0], "link", "set", "vg0", "nomaster")
    output = net.apply(0, {"networks": []})
    assert output["changed"] is True and output["kept"] == []
    assert nube_devices(net.links(0)) == []


def test_a_bridge_network_is_checked_never_made(overlay):
    net = overlay
    state = net.state(0)
    state["networks"].append({"type": "bridge", "bridge": "br0", "name": "lan"})
    rc, output, stderr = net.run(0, state)
    assert rc == 2 and output is None
    assert "bridge br0 does not exist on this host" in stderr
    assert nube_devices(net.links(0)) == []  # the vxlan network was not made either
    net.ip(net.hosts[0], "link", "add", "br0", "type", "bridge")
    assert net.apply(0, state)["changed"] is True
    assert net.apply(0, state)["changed"] is False
    net.apply(0, {"networks": []})
    assert "br0" in net.links(0)


BAD_STATES = [
    ({"networks": [{"type": "vxlan", "vni": 0, "peers": []}], "local": "198.18.0.2"}, "vni"),
    ({"networks": [{"type": "vxlan", "vni": 2**24, "peers": []}], "local": "198.18.0.2"}, "vni"),
    ({"networks": [{"type": "vxlan", "vni": "7", "peers": []}], "local": "198.18.0.2"}, "vni"),
    (
        {"networks": [{"type": "vxlan", "vni": 7, "peers": ["10.0.0.300"]}], "local": "198.18.0.2"},
        "not an IP address",
    ),
    ({"networks": [{"type": "vxlan", "vni": 7}]}, "needs the state's local address"),
    ({"networks": [{"type": "bridge", "bridge": "br0; reboot"}]}, "not an interface name"),
    ({"networks": [{"type": "bridge", "bridge": "nbr7"}]}, "Nube keeps for its own"),
    ({"networks": [{"type": "vlan", "vni": 7}]}, "must be vxlan or bridge"),
    ({"networks": [], "extra": 1}, "unknown key(s) extra"),
    (
        {"local": "198.18.0.99", "networks": [{"type": "vxlan", "vni": 7}]},
        "not an address of this host",
    ),
]


def test_bad_input_changes_nothing(overlay):
    net = overlay
    net.apply(0, net.state(0))
    before = (net.shape(0), net.flood(0))
    for state, message in BAD_STATES:
        rc, output, stderr = net.run(0, state)
        assert (rc, output) == (2, None), state
        assert "refused, nothing changed" in stderr and message in stderr, stderr
    (net.tmp / "state-h0.json").write_text("{not json")
    script = ["python3", str(SCRIPT), str(net.tmp / "state-h0.json")]
    result = sh("ip", "netns", "exec", net.hosts[0], *script, check=False)
    assert result.returncode == 2 and "is not JSON" in result.stderr
    assert (net.shape(0), net.flood(0)) == before


def run_playbook(net, index, extravars):
    """plays/host_networks.yaml on host index (connection local, inside its namespace), its
    extravars written as the provisioner writes them (every string !unsafe); the JSON
    callback's report."""
    path = net.tmp / f"extravars-h{index}.yml"
    path.unlink(missing_ok=True)
    _write_unsafe_yaml(path, extravars)
    env = {
        **os.environ,
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_SHOW_CUSTOM_STATS": "True",
        "NUBE_NETWORKS_LOCK": str(net.tmp / "lock"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    playbook = [
        "ansible-playbook",
        "-i",
        "localhost,",
        "-c",
        "local",
        "-e",
        f"@{path}",
        "-e",
        "ansible_python_interpreter=/usr/bin/python3",
        str(ROOT / "plays" / "host_networks.yaml"),
    ]
    result = subprocess.run(
        ["ip", "netns", "exec", net.hosts[index], *playbook],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    return result.returncode, json.loads(result.stdout)


def test_the_playbook_applies_the_state_and_reports(overlay):
    net = overlay
    folders = set(Path("/tmp").glob("nube-networks-*"))  # the play's temporary folders
    rc, report = run_playbook(net, 0, {"nube_networks": net.state(0)})
    assert rc == 0, report["stats"]
    assert report["stats"]["localhost"]["changed"] == 1
    networks = report["global_custom_stats"]["nube_host"]["networks"]
    assert networks["changed"] is True and networks["kept"] == []
    assert_network(net, 0, ["198.18.0.3", "198.18.0.4"])
    rc, report = run_playbook(net, 0, {"nube_networks": net.state(0)})
    assert (rc, report["stats"]["localhost"]["changed"]) == (0, 0)
    assert report["global_custom_stats"]["nube_host"]["networks"]["actions"] == []
    # refused input fails the play and changes nothing; its temporary folder goes all the same
    bad = {"nube_networks": {"networks": [{"type": "vxlan", "vni": 0}], "local": "198.18.0.2"}}
    rc, report = run_playbook(net, 0, bad)
    assert rc != 0 and report["stats"]["localhost"]["failures"] == 1
    assert_network(net, 0, ["198.18.0.3", "198.18.0.4"])
    rc, report = run_playbook(net, 0, {"nube_networks": {"networks": []}})
    assert (rc, report["stats"]["localhost"]["changed"]) == (0, 1)
    assert nube_devices(net.links(0)) == []
    assert set(Path("/tmp").glob("nube-networks-*")) <= folders


SPOOFED_MAC = "02:de:ad:be:ef:01"
# One VXLAN packet (VNI, then an Ethernet broadcast from SPOOFED_MAC) sent from a namespace to
# an address: what anyone reaching a host's address could send.
SEND_VXLAN = """
import socket, sys
vni = int(sys.argv[2]).to_bytes(3, "big")
frame = b"\\xff" * 6 + bytes.fromhex("02deadbeef01") + b"\\x08\\x00" + b"\\x00" * 46
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(
    b"\\x08\\x00\\x00\\x00" + vni + b"\\x00" + frame, (sys.argv[1], 4789)
)
"""


def learned(net, index):
    """Where host index's VXLAN device learned SPOOFED_MAC to be (its dst), or None."""
    entries = json.loads(sh("bridge", "-n", net.hosts[index], "-j", "fdb", "show").stdout)
    found = [e.get("dst") for e in entries if e.get("mac") == SPOOFED_MAC]
    return found[0] if found else None


def send_vxlan(net, source, target):
    """Send the spoofed packet from host source's namespace to host target's data address."""
    sh(
        "ip",
        "netns",
        "exec",
        net.hosts[source],
        "python3",
        "-c",
        SEND_VXLAN,
        net.addresses[target],
        str(VNI),
    )


def test_only_the_peers_may_send_into_an_overlay(overlay):
    """Host 1's only peer is host 2: host 3's packet to its VXLAN port is dropped (never
    learned), host 2's is taken; with no network left, the filter table goes too."""
    net = overlay
    net.apply(0, net.state(0, peers=[net.addresses[1]]))
    send_vxlan(net, 2, 0)
    wait_for(
        lambda: (
            "packets 1"
            in sh(
                "ip", "netns", "exec", net.hosts[0], "nft", "list", "table", "inet", "nube_vxlan"
            ).stdout
        ),
        timeout=5,
        interval=0.1,
    )
    assert learned(net, 0) is None
    send_vxlan(net, 1, 0)
    assert wait_for(lambda: learned(net, 0), timeout=5, interval=0.1) == net.addresses[1]
    net.apply(0, {"networks": []})
    tables = sh("ip", "netns", "exec", net.hosts[0], "nft", "list", "tables").stdout
    assert "nube_vxlan" not in tables
