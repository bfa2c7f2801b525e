"""Security groups on a real kernel: plays/files/nube_networks.py given rules, in the namespaces
test_host_networks.py makes (three hosts on an underlay, a guest namespace per host). Each
guest's veth is named as a VM's tap (nt<n>), so the rules apply to it as to a VM's port.

Connections are opened from inside the guest namespaces only; no lab host or VM is used."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.test_host_networks import (
    HOSTS,
    VNI,
    overlay,  # noqa: F401
    pytestmark,
    sh,
)

pytestmark = pytestmark  # the same skips and tier
PROBE = Path(__file__).resolve().parent / "tcp_probe.py"
OPEN, CLOSED = 22, 2222  # the default rules' SSH, and a port no rule lets in


@pytest.fixture
def net(overlay):  # noqa: F811
    """The overlay, each guest's port renamed as a VM tap (nt1, nt2, nt3) and plugged into its
    host's bridge once the network exists; TCP listeners on OPEN and CLOSED in every guest,
    stopped by pid."""
    listeners = []
    for index in range(HOSTS):
        host = overlay.hosts[index]
        overlay.ip(host, "link", "set", "vg0", "down")
        overlay.ip(host, "link", "set", "vg0", "name", tap(index))
        overlay.ip(host, "link", "set", tap(index), "up")
        for port in (OPEN, CLOSED):
            listeners.append(listen(overlay, index, port))
    try:
        yield overlay
    finally:
        for process in listeners:
            process.kill()
            process.wait()


def tap(index):
    """The name of guest index's port on its host."""
    return f"nt{index + 1}"


def listen(net, index, port):
    """A TCP listener on port in guest index (a Popen)."""
    argv = ["ip", "netns", "exec", net.guests[index], "python3", str(PROBE), "listen", str(port)]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "listening"
    return process


def connects(net, source, target, port):
    """Whether guest source opens a TCP connection to guest target's port (and gets its
    answer back, through the replies' path)."""
    address = net.guest_addresses[target]
    argv = ["python3", str(PROBE), "connect", address, str(port)]
    return sh("ip", "netns", "exec", net.guests[source], *argv, check=False).returncode == 0


def state(net, index, rules, zone=7, ports=True):
    """Host index's state: the overlay's network with these rules (None: none given) and its
    guest's port (with ports)."""
    wanted = net.state(index, zone=zone)
    if rules is not None:
        wanted["networks"][0]["rules"] = rules
    if ports:
        port = {"tap": tap(index), "mac": mac(net, index), "ip": net.guest_addresses[index]}
        wanted["networks"][0]["ports"] = [port]
    return wanted


def mac(net, index):
    """Guest index's MAC address."""
    link = json.loads(net.ip(net.guests[index], "-j", "link", "show", "eth0"))[0]
    return link["address"]


def everywhere(net, rules, ports=True):
    """Apply the network with these rules on every host, plugging each guest in."""
    outputs = [net.apply(index, state(net, index, rules, ports=ports)) for index in range(HOSTS)]
    for index in range(HOSTS):
        net.ip(net.hosts[index], "link", "set", tap(index), "master", f"nbr{VNI}")
    return outputs


def tables(net, index):
    """The nftables tables of host index."""
    return sh("ip", "netns", "exec", net.hosts[index], "nft", "list", "tables").stdout.split("\n")


SSH_ONLY = [{"protocol": "tcp", "ports": [OPEN, OPEN]}]


def test_rules_let_in_what_they_allow_and_replies_then_change_and_go(net):
    everywhere(net, None)
    assert connects(net, 0, 1, CLOSED), "no rules: everything passes (the control)"
    outputs = everywhere(net, SSH_ONLY)
    assert any("table inet nube_rules {" in action for action in outputs[0]["actions"])
    assert "table inet nube_rules" in tables(net, 0)
    assert connects(net, 0, 1, OPEN)  # its replies come back through guest 0's port: tracked
    assert not connects(net, 0, 1, CLOSED)
    assert not connects(net, 2, 0, CLOSED)
    # the same state again changes nothing
    assert net.apply(0, state(net, 0, SSH_ONLY)) == {"changed": False, "actions": [], "kept": []}
    # changed rules are applied; none at all let in replies only
    everywhere(net, SSH_ONLY + [{"protocol": "tcp", "ports": [CLOSED, CLOSED]}])
    assert connects(net, 0, 1, CLOSED)
    everywhere(net, [])
    assert not connects(net, 0, 1, OPEN)
    assert net.ping(0, 1, seconds=1).returncode == 1
    # the tables go with the host's last network
    for index in range(HOSTS):
        net.ip(net.hosts[index], "link", "set", tap(index), "nomaster")
        output = net.apply(index, {"networks": []})
        assert "nft delete table inet nube_rules" in output["actions"], output
        assert not any("nube_rules" in line or "nube_ports" in line for line in tables(net, index))


def test_sources_and_protocols(net):
    rules = [
        {"protocol": "tcp", "ports": [2000, 2300], "source": "10.77.0.1/32"},
        {"protocol": "icmp", "source": "10.77.0.3/32"},
    ]
    everywhere(net, rules)
    assert connects(net, 0, 1, CLOSED)  # from 10.77.0.1, in the range
    assert not connects(net, 2, 1, CLOSED)  # from 10.77.0.3: not that rule's source
    assert not connects(net, 0, 1, OPEN)  # outside the range
    assert net.ping(2, 1, seconds=2).returncode == 0
    assert net.ping(0, 1, seconds=1).returncode == 1


class Datagrams:
    """A UDP listener in a guest (stopped by pid): what it received, read line by line."""

    def __init__(self, net, index, port):
        argv = ["ip", "netns", "exec", net.guests[index], "python3", str(PROBE)]
        self.process = subprocess.Popen([*argv, "udp-listen", str(port)], stdout=subprocess.PIPE)
        self.output = self.process.stdout.fileno()
        assert os.read(self.output, 64).startswith(b"listening")
        os.set_blocking(self.output, False)

    def received(self, settle=0.5):
        """The senders of the datagrams received since the last call (after settle seconds)."""
        time.sleep(settle)  # a datagram crosses the namespaces in milliseconds
        try:
            lines = os.read(self.output, 65536).decode().splitlines()
        except BlockingIOError:  # nothing received
            return []
        return [line.split()[1] for line in lines if line]

    def stop(self):
        """Stop the listener by its pid."""
        self.process.kill()
        self.process.wait()


def send(net, source, *args):
    """Run tcp_probe.py in guest source with these arguments."""
    sh("ip", "netns", "exec", net.guests[source], "python3", str(PROBE), *args)


def test_tagged_frames_never_reach_a_vms_port_and_forged_ones_open_nothing(net):
    everywhere(net, SSH_ONLY)
    listener = Datagrams(net, 1, 5000)
    try:
        target, own = net.guest_addresses[1], net.guest_addresses[0]
        send(net, 0, "udp-send", target, "5000", "6000")
        frame = ["frame", "eth0", mac(net, 1), own, "6001", target, "5000"]
        send(net, 0, *frame)
        assert listener.received() == []  # the rules drop both (the control)
        send(net, 0, *frame, "vlan")  # a priority tag: the guest takes it as untagged
        assert listener.received() == []
    finally:
        listener.stop()
    everywhere(net, None, ports=False)
    listener = Datagrams(net, 1, 5000)
    try:
        send(net, 0, *frame, "vlan")
        assert listener.received() == [f"{own}:6001"], "without Nube's tables it arrives"
    finally:
        listener.stop()
    # guest 1 as a machine on the bridge that is no VM (a LAN host on a bridge network: its
    # port is not a tap, so nothing checks what it sends) forges a datagram from guest 2's own
    # address (which its rules let in) to itself, sent to guest 2's MAC: had it made a
    # connection whose replies get in, guest 1's datagram to guest 2 would pass as its reply
    victim, attacker = net.guest_addresses[1], net.guest_addresses[0]
    everywhere(net, [{"protocol": "any", "source": f"{victim}/32"}])
    host = net.hosts[0]
    net.ip(host, "link", "set", tap(0), "down")
    net.ip(host, "link", "set", tap(0), "name", "lan1")
    net.ip(host, "link", "set", "lan1", "up")
    listener = Datagrams(net, 1, 5000)
    try:
        send(net, 0, "udp-send", victim, "5000", "6000")
        assert listener.received() == []  # the attacker is not let in (the control)
        send(net, 0, "frame", "eth0", mac(net, 1), victim, "5000", attacker, "6000")
        # it reached guest 2's port, was let in by its source, and made a connection there
        tracked = sh("ip", "netns", "exec", net.hosts[1], "cat", "/proc/net/nf_conntrack").stdout
        assert f"src={victim} dst={attacker} sport=5000 dport=6000" in tracked
        send(net, 0, "udp-send", victim, "5000", "6000")  # its "reply"
        assert listener.received() == []
    finally:
        listener.stop()


def test_a_vm_port_sends_only_as_its_nic(net):
    """Guest 1 may reach guest 2 only as guest 3 would (guest 2's rules let in guest 3 alone):
    a datagram with guest 3's address, or another MAC, never leaves guest 1's port; guest 3's
    own does arrive."""
    target, third = net.guest_addresses[1], net.guest_addresses[2]
    everywhere(net, [{"protocol": "any", "source": f"{third}/32"}])
    listener = Datagrams(net, 1, 5000)
    try:
        send(net, 0, "frame", "eth0", mac(net, 1), third, "6000", target, "5000")
        send(net, 0, "udp-send", target, "5000", "6001")
        assert listener.received() == []
        send(net, 2, "udp-send", target, "5000", "6002")
        assert listener.received() == [f"{third}:6002"]
    finally:
        listener.stop()
    drops = sh("ip", "netns", "exec", net.hosts[0], "nft", "list", "chain", "bridge", "nube_ports",
               "from_port").stdout  # fmt: skip
    assert "ip saddr != @nic_addresses counter packets 1 " in drops, drops
