"""Virtual networks on lab hosts (each in its own network namespace): how long Nube takes to
bring a VXLAN network up on 8 hosts (VM creations on it beside the same creations on no
network), and TCP throughput between two real guests over the overlay under TCG, beside the
same two host namespaces over that overlay and joined by a plain veth (the floor)."""

import shutil
import statistics
import subprocess
import sys
import threading
import time

from app import core
from tests.conftest import make_image
from tests.images import built_image
from tests.integration import guest_exec
from tests.integration.conftest import lab_controller
from tests.lab import lab
from tests.wait import join_all, wait_for

HOSTS = 8
IMAGE = "blank.qcow2"
GUEST_IMAGE = "debian12.qcow2"
CIDR = "10.95.0.0/24"
SECONDS = 5  # each throughput measurement
PORT = 5201
BOOT_TIMEOUT = 900
# A TCP sender and receiver in one script (the guests and the lab have python3, no iperf):
# `serve PORT` prints the bytes and seconds it received; `send HOST PORT SECONDS` writes for
# that long.
TCP = r"""
import socket, sys, time
if sys.argv[1] == "serve":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(sys.argv[2]))); s.listen(1); c, _ = s.accept()
    n, t = 0, None
    while True:
        b = c.recv(1 << 16)
        if not b: break
        t = t or time.monotonic(); n += len(b)
    print(n, time.monotonic() - t)
else:
    c = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=30)
    chunk, end = b"x" * (1 << 16), time.monotonic() + float(sys.argv[4])
    while time.monotonic() < end: c.sendall(chunk)
    c.close()
"""


def _register(hosts):
    """Register and prepare the lab hosts (host_add.yaml: the controller's key, group
    libvirt; the sudo password stored for the network play)."""
    for number, host in enumerate(hosts, start=1):
        core.addHost(
            {
                "address": host["address"],
                "data_address": host["data_address"],
                "user": host["user"],
                "password": host["password"],
                "name": f"lab{number}",
                "share": "bind",
                "network": "none",
            }
        )


def _create_on_every_host(app, prefix, networks):
    """Seconds to create one VM on each host at once (one thread each)."""
    errors = []

    def create(number):
        with app.app_context():
            try:
                vm = {"id": f"{prefix}{number}", "image": IMAGE, "mem": 16, "host": f"lab{number}"}
                core.addVm({**vm, "networks": networks})
            except Exception as exc:  # noqa: BLE001  reported below
                errors.append(exc)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(1, HOSTS + 1)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    join_all(threads, timeout=600, message="the VM creations")
    if errors:
        raise RuntimeError(f"creations failed: {errors[0]}")
    return time.perf_counter() - started


def network_up(app, top):
    """Bring a network up on 8 hosts through VM creations, beside the same creations on no
    network; then the removals that take it down again."""
    make_image(top / "export" / "iaas" / "images" / IMAGE, size="64M", fmt="qcow2")
    with app.app_context():
        plain = _create_on_every_host(app, "plain", [])
        core.addNetwork({"name": "benchnet", "cidr": CIDR})
        with_network = _create_on_every_host(app, "net", ["benchnet"])
        again = _create_on_every_host(app, "again", ["benchnet"])  # the network is there
        started = time.perf_counter()
        core.updateNetwork("benchnet", {"rules": ["any from network", "tcp/22", "tcp/80"]})
        rules_changed = time.perf_counter() - started  # a play on each of the 8 hosts
        started = time.perf_counter()
        for number in range(1, HOSTS + 1):
            core.removeVm(f"again{number}")
        removals_kept = time.perf_counter() - started
        started = time.perf_counter()
        for number in range(1, HOSTS + 1):
            core.removeVm(f"net{number}")  # the last VM on it: the host's network goes
        removals_down = time.perf_counter() - started
    return {
        "hosts": HOSTS,
        "create_8_vms_no_network_s": round(plain, 2),
        "create_8_vms_bringing_network_up_s": round(with_network, 2),
        "network_up_on_8_hosts_s": round(with_network - plain, 2),
        "create_8_vms_network_already_up_s": round(again, 2),
        "rules_change_on_8_hosts_s": round(rules_changed, 2),
        "remove_8_vms_network_stays_s": round(removals_kept, 2),
        "remove_8_vms_network_goes_s": round(removals_down, 2),
    }


NAMESPACES = {}  # lab host number (1, 2...) -> its network namespace, from lab.up


def _in_ns(host_number, *argv, timeout=60, background=False):
    """Run a command in a lab host's network namespace."""
    args = ["ip", "netns", "exec", NAMESPACES[host_number], *argv]
    if background:
        return subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=True)


def _namespace_throughput(server_ip, client_ip_host=1, server_host=2):
    """Mbit/s of one TCP stream from lab1's namespace to lab2's at server_ip."""
    server = _in_ns(server_host, sys.executable, "-c", TCP, "serve", str(PORT), background=True)
    time.sleep(0.5)
    _in_ns(client_ip_host, sys.executable, "-c", TCP, "send", server_ip, str(PORT), str(SECONDS))
    received, seconds = server.communicate(timeout=60)[0].split()
    return round(int(received) * 8 / float(seconds) / 1e6, 1)


def _quietly(host_number, *argv):
    """Run a clean-up command in a lab host's namespace, whatever it says."""
    subprocess.run(["ip", "netns", "exec", NAMESPACES[host_number], *argv], check=False)


def namespaces(bridge):
    """Host namespace to host namespace: over the overlay's bridges, and over a plain veth."""
    _in_ns(1, "ip", "addr", "add", "10.95.0.251/24", "dev", bridge)
    _in_ns(2, "ip", "addr", "add", "10.95.0.252/24", "dev", bridge)
    # the floor: the same two namespaces joined by one veth pair
    peer = ["peer", "name", "benchveth", "netns", NAMESPACES[2]]
    _in_ns(1, "ip", "link", "add", "benchveth", "type", "veth", *peer)
    for number in (1, 2):
        _in_ns(number, "ip", "addr", "add", f"10.96.0.{number}/24", "dev", "benchveth")
        _in_ns(number, "ip", "link", "set", "benchveth", "up")
    try:
        return {
            "namespaces_over_overlay_mbit_s": _namespace_throughput("10.95.0.252"),
            "namespaces_over_veth_mbit_s": _namespace_throughput("10.96.0.2"),
        }
    finally:
        _quietly(1, "ip", "link", "del", "benchveth")
        for number in (1, 2):
            _quietly(number, "ip", "addr", "del", f"10.95.0.25{number}/24", "dev", bridge)


def _guest_throughput(app, server_ip):
    """Mbit/s of one TCP stream from guest b1 to guest b2 (python3 in both, under TCG)."""
    result = {}

    def serve():
        with app.app_context():
            result["out"] = guest_exec.run(app, "b2", "python3", "-c", TCP, "serve", str(PORT))[1]

    server = threading.Thread(target=serve)
    server.start()
    time.sleep(2)
    guest_exec.run(app, "b1", "python3", "-c", TCP, "send", server_ip, str(PORT), str(SECONDS))
    join_all([server], timeout=120, message="the guest receiver")
    received, seconds = result["out"].split()
    return round(int(received) * 8 / float(seconds) / 1e6, 1)


def guests(app, top):
    """Two real guests on the network, on lab1 and lab2, under TCG: TCP throughput."""
    shutil.copyfile(built_image(), top / "export" / "iaas" / "images" / GUEST_IMAGE)
    app.config["VIRT_TYPE"] = "qemu"
    from app.services import vms

    with app.app_context():
        for name, host in (("b1", "lab1"), ("b2", "lab2")):
            core.addVm(
                {
                    "id": name,
                    "image": GUEST_IMAGE,
                    "mem": 512,
                    "host": host,
                    "networks": ["benchnet"],
                    "start": True,
                }
            )
        for name in ("b1", "b2"):
            wait_for(lambda name=name: vms.guest(name), timeout=BOOT_TIMEOUT, interval=5)
        [b2] = core.listVms("id = b2")
        runs = [_guest_throughput(app, b2["ip"]) for _ in range(3)]
        return {"vms_over_overlay_tcg_mbit_s": statistics.median(runs), "vm_runs": runs}


def main():
    """Network bring-up and throughput figures."""
    hosts = lab.up(HOSTS)
    NAMESPACES.update({number: host["netns"] for number, host in enumerate(hosts, start=1)})
    app, top = lab_controller("nube-bench-net-")
    try:
        with app.app_context():
            core.init()
            _register(hosts)
        figures = network_up(app, top)
        with app.app_context():
            [network] = core.listNetworks("name = benchnet")
        figures.update(guests(app, top))
        figures.update(namespaces(network["bridge"]))
        figures["vms_over_floor"] = round(
            figures["vms_over_overlay_tcg_mbit_s"] / figures["namespaces_over_veth_mbit_s"], 4
        )
        with app.app_context():
            core.destroy()
        return figures
    finally:
        app.extensions["nube"].hypervisor.close()
        lab.down()
        shutil.rmtree(top, ignore_errors=True)
