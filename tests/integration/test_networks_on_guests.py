"""Nube's VXLAN network on real guests (the tier's shared guest1 and guest2, each with a NIC on
guests.NETWORK, on lab1 and lab2, each lab host in its own network namespace): they reach each
other at the addresses Nube gave them, their owner logs in from inside the lab, a continuous
ping survives a live migration to a third host, and the address stays."""

import re
import subprocess
import threading
import time

import pytest

from app import core, net_rules
from app.services import vms
from tests.integration import guest_exec
from tests.integration.guests import NETWORK, NETWORK_CIDR, OWNER_ADDRESS, hostname
from tests.wait import join_all, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PING_SECONDS = 300  # the longest the continuous ping runs; it is ended once the move is done
PING_INTERVAL = "0.2"
PINGS_AFTER = 3.0  # seconds of pings after the move, before the ping is ended
# the pids of the guest's ping processes (its minimal image has no procps)
PING_PIDS = "grep -lx ping /proc/[0-9]*/comm 2>/dev/null | cut -d/ -f3"
LOST_AT_MOST = 10  # two seconds of pings: "a few" packets while the guest changes hosts


@pytest.fixture
def shared(running_guests):
    """The shared guests, with their controller's app context pushed for the test."""
    with running_guests["app"].app_context():
        yield running_guests


def address(vm_id):
    """The address Nube gave a guest's NIC on the network."""
    [vm] = core.listVms(f"id = {vm_id}")
    assert [n["network"] for n in vm["networks"]] == [NETWORK]
    return vm["ip"]


def namespace(host_name):
    """The network namespace of a lab host (tests/lab/lab.py names them by host number)."""
    return f"nube-lab{host_name.removeprefix('lab')}"


def in_namespace(host_name, *argv, timeout=30):
    """Run a command inside a lab host's network namespace; the finished process."""
    return subprocess.run(
        ["ip", "netns", "exec", namespace(host_name), *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def pinging(app):
    """Whether guest1 runs ping now."""
    return bool(guest_exec.shell(app, "guest1", PING_PIDS, check=False).split())


def bridge_of_network():
    """The bridge Nube makes for the network on its hosts."""
    [network] = core.listNetworks(f"name = {NETWORK}")
    return network["bridge"]


def test_guests_on_two_hosts_reach_each_other_at_their_nube_addresses(shared):
    app = shared["app"]
    one, two = address("guest1"), address("guest2")
    assert {one, two} == {"10.90.0.1", "10.90.0.2"}
    # the guests have the addresses Nube gave them (network-config), as their agents say
    for vm_id, ip in (("guest1", one), ("guest2", two)):
        guest = wait_for(lambda vm_id=vm_id: vms.guest(vm_id), timeout=60, interval=2)
        assert ip in [a["address"] for a in guest["addresses"]], guest
        assert guest["missing_addresses"] == []
    hosts = {vm["id"]: vm["host_name"] for vm in core.listVms()}
    assert hosts["guest1"] != hosts["guest2"]  # across the overlay, host to host
    guest_exec.run(app, "guest1", "ping", "-c", "3", "-W", "5", two)
    guest_exec.run(app, "guest2", "ping", "-c", "3", "-W", "5", one)
    # guest1 reaches guest2's SSH server: its banner
    banner = guest_exec.shell(
        app, "guest1", f"timeout 10 bash -c 'exec 3<>/dev/tcp/{two}/22; head -c 8 <&3'"
    )
    assert banner.startswith("SSH-2.0"), banner


def test_the_owner_logs_in_with_their_key_from_inside_the_lab(shared):
    """An access point on the overlay in guest1's host's namespace (the lab's, never the
    machine's), and ssh with the owner's key to the address Nube shows."""
    [vm] = core.listVms("id = guest1")
    host, bridge = vm["host_name"], bridge_of_network()
    prefix = NETWORK_CIDR.split("/")[1]
    added = in_namespace(host, "ip", "addr", "add", f"{OWNER_ADDRESS}/{prefix}", "dev", bridge)
    assert added.returncode == 0, added.stderr
    try:
        login = in_namespace(
            host,
            "ssh",
            "-i",
            shared["owner_keyfile"],
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=20",
            f"debian@{vm['ip']}",
            "hostname",
            timeout=60,
        )
        assert login.returncode == 0, login.stderr
        assert login.stdout.strip() == hostname("guest1")
    finally:
        in_namespace(host, "ip", "addr", "del", f"{OWNER_ADDRESS}/{prefix}", "dev", bridge)


def test_a_continuous_ping_survives_the_targets_live_migration_to_a_third_host(shared, lab_hosts):
    app = shared["app"]
    target_ip = address("guest2")
    [before] = core.listVms("id = guest2")
    assert before["host_name"] != "lab3"
    result = {}

    def ping():
        with app.app_context():
            result["ping"] = guest_exec.run(
                app,
                "guest1",
                "ping",
                "-i",
                PING_INTERVAL,
                "-w",
                str(PING_SECONDS),
                target_ip,
                check=False,
            )

    pinger = threading.Thread(target=ping, name="ping-guest2")
    pinger.start()
    try:
        wait_for(lambda: pinging(app), timeout=30, interval=0.5, message="the ping to start")
        moved = core.migrateVm("guest2", "lab3")
        assert pinger.is_alive(), "the migration must happen while the ping runs"
        time.sleep(PINGS_AFTER)  # a few pings to the new host, then the summary
    finally:
        guest_exec.shell(app, "guest1", f"kill -INT $({PING_PIDS}) 2>/dev/null", check=False)
        join_all([pinger], timeout=60, message="the continuous ping")
    assert moved["host_name"] == "lab3" and moved["state"] == "running"
    assert moved["ip"] == target_ip  # the address is the VM's, wherever it runs
    summary = re.search(r"(\d+) packets transmitted, (\d+) received", result["ping"][1])
    assert summary, result["ping"]
    sent, received = int(summary.group(1)), int(summary.group(2))
    print(f"ping through the migration: {sent} sent, {received} received")  # for the notes
    assert sent >= 5 / float(PING_INTERVAL)  # it ran all along: the move, then PINGS_AFTER
    assert sent - received <= LOST_AT_MOST, result["ping"][1]
    # after the move: reached again, and it still reports the address
    guest_exec.run(app, "guest1", "ping", "-c", "3", "-W", "5", target_ip)
    guest = wait_for(lambda: vms.guest("guest2"), timeout=60, interval=2)
    assert target_ip in [a["address"] for a in guest["addresses"]]
    # the source host no longer carries the network: guest2 was its last VM on it
    leftovers = in_namespace(before["host_name"], "ip", "-br", "link", "show", "type", "vxlan")
    assert "nvx" not in leftovers.stdout


def test_the_networks_rules_are_enforced_at_the_guests_ports(shared):
    """The network's security group changed through the API reaches the hosts' tables: with
    SSH alone let in, guest1's ping to guest2 is dropped at guest2's port while its SSH
    connection passes (and its replies, by connection tracking, at guest1's port); the
    default rules let the ping through again."""
    app = shared["app"]
    one, two = address("guest1"), address("guest2")
    core.updateNetwork(NETWORK, {"rules": ["tcp/22 from any"]})
    try:
        hosts = {vm["host_name"] for vm in core.listVms() if vm["id"] in ("guest1", "guest2")}
        for host in sorted(hosts):
            listing = in_namespace(host, "nft", "list", "table", "inet", "nube_rules")
            assert "tcp dport 22 accept" in listing.stdout, listing
            assert "ip saddr 10.90.0.0/24 accept" not in listing.stdout
        dropped = guest_exec.run(app, "guest1", "ping", "-c", "2", "-W", "2", two, check=False)
        assert dropped[0] != 0, dropped
        banner = guest_exec.shell(
            app, "guest1", f"timeout 10 bash -c 'exec 3<>/dev/tcp/{two}/22; head -c 8 <&3'"
        )
        assert banner.startswith("SSH-2.0"), banner
    finally:
        core.updateNetwork(NETWORK, {"rules": list(net_rules.DEFAULT_RULES)})
    guest_exec.run(app, "guest2", "ping", "-c", "2", "-W", "5", one)
    guest_exec.run(app, "guest1", "ping", "-c", "2", "-W", "5", two)
