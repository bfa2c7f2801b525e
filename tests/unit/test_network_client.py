"""`nube network ...`, `nube vm create --network NAME[=IP]` and the VMs' addresses in `nube vm
list`/`show`, against the app served on loopback as in test_client.py: each command's output,
its exit code for a refusal, and what it changed."""

import re

import pytest

from tests.factories import gen_image, gen_prepared_host
from tests.unit import test_client

# test_client.py's fixtures: the client in-process, the served app, logged in with a token
nube = test_client.nube
served = test_client.served
token = test_client.token
logged_in = test_client.logged_in


@pytest.fixture
def prepared(app):
    """A ready host with its sudo password (networks are set up with it) and an image."""
    gen_prepared_host(app)
    return gen_image(app)


def network_names(app):
    """The networks core.listNetworks shows."""
    from app import core

    with app.app_context():
        return [n["name"] for n in core.listNetworks()]


def test_network_create_list_show_and_remove(nube, logged_in, app):
    made = nube(
        "-o", "json", "network", "create", "net1", "--cidr", "10.20.0.0/24",
        "--gateway", "10.20.0.1", "--dns", "10.20.0.1,1.1.1.1", "--dns", "9.9.9.9",
        "--range", "10.20.0.10-10.20.0.99",
    )  # fmt: skip
    assert made.code == 0, made.err
    network = made.json()
    assert (network["vni"], network["dns"]) == (100, ["10.20.0.1", "1.1.1.1", "9.9.9.9"])
    assert (network["range"], network["free"]) == ("10.20.0.10-10.20.0.99", 90)
    plain = nube("network", "create", "lan", "--type", "bridge", "--bridge", "br0",
                 "--cidr", "192.168.5.0/24")  # fmt: skip
    assert plain.code == 0, plain.err
    assert re.search(r"^bridge: +br0$", plain.out, re.M)
    table = nube("network", "list").out.splitlines()
    assert table[0].split() == [
        "NAME", "TYPE", "VNI", "BRIDGE", "CIDR", "GATEWAY", "USED", "FREE", "PROJECT",
    ]  # fmt: skip
    assert [line.split()[:3] for line in table[1:]] == [
        ["lan", "bridge", "-"],
        ["net1", "vxlan", "100"],
    ]
    listed = nube("-o", "json", "network", "list", "-q", "type = vxlan").json()
    assert [item["name"] for item in listed] == ["net1"]
    assert nube("network", "list", "-q", "nope = 1").code == 3
    shown = nube("network", "show", "net1")
    assert shown.code == 0 and re.search(r"^cidr: +10\.20\.0\.0/24$", shown.out, re.M)
    assert re.search(r"^addresses: +none$", shown.out, re.M)
    assert nube("network", "show", "nope").code == 5
    taken = nube("network", "create", "net1", "--cidr", "10.21.0.0/24")
    assert taken.code == 6 and "already exists" in taken.err
    removed = nube("network", "remove", "lan", "--yes")
    assert removed.code == 0 and removed.out == "network lan removed\n"
    assert network_names(app) == ["net1"]


def test_network_create_refuses_bad_input(nube, logged_in, app):
    public = nube("network", "create", "net1", "--cidr", "8.8.8.0/24")
    assert public.code == 3 and "not a private range" in public.err
    bad_dns = nube("network", "create", "net1", "--cidr", "10.2.0.0/24", "--dns", "nope")
    assert bad_dns.code == 3 and "'nope' is not an IPv4 address" in bad_dns.err
    assert nube("network", "create", "net1").code == 2  # --cidr is required
    assert nube("network", "create", "net1", "--cidr", "10.2.0.0/24", "--type", "vlan").code == 2
    assert network_names(app) == []


def test_network_remove_asks_first(nube, logged_in, app):
    assert nube("network", "create", "net1", "--cidr", "10.20.0.0/24").code == 0
    piped = nube("network", "remove", "net1")  # no terminal to ask at
    assert piped.code == 2 and "Give --yes to confirm" in piped.err
    declined = nube("network", "remove", "net1", typed="", stdin="n\n")
    assert declined.code == 2 and "not confirmed" in declined.err
    assert network_names(app) == ["net1"]
    agreed = nube("network", "remove", "net1", typed="", stdin="y\n")
    assert agreed.code == 0, agreed.err
    assert network_names(app) == []


def test_vm_create_on_networks_shows_its_addresses(nube, logged_in, app, prepared):
    assert nube("network", "create", "net1", "--cidr", "10.20.0.0/24", "--gateway",
                "10.20.0.1").code == 0  # fmt: skip
    assert nube("network", "create", "net2", "--cidr", "10.30.0.0/24").code == 0
    made = nube(
        "vm", "create", "web1", "--image", prepared, "--mem", "64", "--network", "net1",
        "--network", "net2=10.30.0.7", "--wait",
    )  # fmt: skip
    assert made.code == 0, made.err
    table = nube("vm", "list").out.splitlines()
    assert table[0].split()[-1] == "IP" and table[1].split()[-1] == "10.20.0.2"
    shown = nube("vm", "show", "web1")
    assert re.search(r"^ip: +10\.20\.0\.2$", shown.out, re.M)
    assert re.search(r"^networks: +net1 10\.20\.0\.2 52:54:", shown.out, re.M)
    assert re.search(r"^ +net2 10\.30\.0\.7 52:54:", shown.out, re.M)
    vm = nube("-o", "json", "vm", "show", "web1").json()
    assert [(n["network"], n["ip"]) for n in vm["networks"]] == [
        ("net1", "10.20.0.2"),
        ("net2", "10.30.0.7"),
    ]
    network = nube("network", "show", "net2")
    assert re.search(r"^addresses: +10\.30\.0\.7 web1 nic 1 52:54:", network.out, re.M)
    in_use = nube("network", "remove", "net1", "--yes")
    assert in_use.code == 6 and "in use by 1 VM (web1)" in in_use.err
    taken = nube("vm", "create", "web2", "--image", prepared, "--mem", "64",
                 "--network", "net2=10.30.0.7")  # fmt: skip
    assert taken.code == 6 and "already in use on network net2" in taken.err
    missing = nube("vm", "create", "web2", "--image", prepared, "--mem", "64", "--network", "x")
    assert missing.code == 3 and "network x not found" in missing.err
    for bad in ("=10.0.0.1", "net1="):
        run = nube("vm", "create", "web2", "--image", prepared, "--mem", "64", "--network", bad)
        assert run.code == 2 and "give NAME or NAME=IP" in run.err
