"""plays/files/nube_networks.py's pure parts: checking the desired state, and the commands
planned from what `ip -j -d link show` and `bridge -j fdb show` say (nothing is run here; the
integration tier runs the script on a real kernel in namespaces)."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "plays" / "files" / "nube_networks.py"


def _load():
    """The script as a module (it lives with the plays, outside any package)."""
    spec = importlib.util.spec_from_file_location("nube_networks", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


nn = _load()
LOCAL = "198.18.0.2"
ZERO = "00:00:00:00:00:00"


def state(*networks, local=LOCAL):
    """A parsed desired state."""
    return nn.parse_state({"local": local, "networks": list(networks)})


def vxlan(vni=4100, peers=("198.18.0.3", "198.18.0.4"), **extra):
    """One vxlan network of the input."""
    return {"type": "vxlan", "vni": vni, "peers": list(peers), **extra}


def link(name, kind=None, mtu=1450, master=None, up=True, **info_data):
    """One link as `ip -j -d link show` gives it."""
    entry = {"ifname": name, "mtu": mtu, "flags": ["BROADCAST", "UP"] if up else ["BROADCAST"]}
    if master:
        entry["master"] = master
    if kind:
        entry["linkinfo"] = {"info_kind": kind, "info_data": info_data}
    return entry


def nvx(vni=4100, local=LOCAL, port=4789, **options):
    """A VXLAN link as the script makes it (options override)."""
    data = {"id": vni, "local": local, "port": port, "learning": True}
    return link(f"nvx{vni}", "vxlan", master=options.pop("master", f"nbr{vni}"), **data | options)


def host(*entries):
    """Links by name."""
    return {entry["ifname"]: entry for entry in entries}


def flood(device, *peers):
    """The all-zeros FDB entries of a VXLAN device."""
    return [{"mac": ZERO, "ifname": device, "dst": peer, "state": "permanent"} for peer in peers]


def commands(steps):
    """Planned commands as text."""
    return [" ".join(step) for step in steps]


def test_the_state_is_normalised():
    parsed = nn.parse_state(
        {
            "local": "2001:db8:0:0::1",
            "networks": [
                {"type": "vxlan", "vni": 9, "peers": ["2001:db8::3", "2001:0db8::2"], "name": "a"},
                {"type": "bridge", "bridge": "br0"},
                {"type": "bridge", "bridge": "br0"},
            ],
        }
    )
    assert parsed == {
        "local": "2001:db8::1",
        "vxlans": {9: {"peers": ["2001:db8::2", "2001:db8::3"], "mtu": 1450}},
        "bridges": ["br0"],
        "filters": [
            {"bridge": "br0", "zone": None, "rules": None, "ports": [], "guarded": []},
            {"bridge": "nbr9", "zone": None, "rules": None, "ports": [], "guarded": []},
        ],
    }
    empty = {"local": None, "vxlans": {}, "bridges": [], "filters": []}
    assert nn.parse_state({"networks": []}) == empty


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "must be a JSON object"),
        ({}, "networks must be a list"),
        ({"networks": [], "locale": "x"}, "unknown key(s) locale"),
        ({"networks": [], "rules": []}, "unknown key(s) rules"),
        ({"networks": ["net1"]}, "networks[0]: a network is a JSON object"),
        ({"networks": [{"type": "vxlan", "vni": 1}], "local": "0.0.0.0"}, "not a unicast"),
        ({"networks": [{"type": "vxlan", "vni": 1}], "local": 3}, "an IP address is a string"),
        ({"networks": [vxlan(vni=True)], "local": LOCAL}, "vni: must be an integer from 1"),
        ({"networks": [vxlan(vni=16777216)], "local": LOCAL}, "to 16777215"),
        ({"networks": [vxlan(mtu=60)], "local": LOCAL}, "mtu: must be an integer from 68"),
        ({"networks": [vxlan(), vxlan()], "local": LOCAL}, "networks[1]: VNI 4100 is listed twice"),
        ({"networks": [vxlan(peers=["198.18.0.3"] * 2)], "local": LOCAL}, "an address twice"),
        ({"networks": [vxlan(peers=["2001:db8::3"])], "local": LOCAL}, "not of local's family"),
        ({"networks": [vxlan(peers=[LOCAL])], "local": LOCAL}, "this host's own address"),
        (
            {"networks": [{"type": "vxlan", "vni": 1, "peers": "198.18.0.3"}], "local": LOCAL},
            "peers must be a list",
        ),
        ({"networks": [vxlan(peers=["224.0.0.1"])], "local": LOCAL}, "not a unicast"),
        ({"networks": [vxlan(group="239.1.1.1")], "local": LOCAL}, "unknown key(s) group"),
        ({"networks": [vxlan(name=5)], "local": LOCAL}, "name: must be a string"),
        ({"networks": [{"type": "bridge", "bridge": "a" * 16}]}, "not an interface name"),
        ({"networks": [{"type": "bridge", "bridge": "../x"}]}, "not an interface name"),
        ({"networks": [{"type": "bridge", "bridge": "nvx12"}]}, "Nube keeps for its own"),
        ({"networks": [{"type": "bridge", "bridge": "br0", "mtu": 9000}]}, "unknown key(s) mtu"),
    ],
)
def test_bad_states_are_refused(data, message):
    with pytest.raises(nn.InvalidState) as refused:
        nn.parse_state(data)
    assert message in str(refused.value)


def test_an_empty_host_gets_the_whole_network():
    steps, kept = nn.plan(state(vxlan(mtu=1400)), host(link("eth0")), [])
    assert kept == []
    assert commands(steps) == [
        "ip link add nvx4100 mtu 1400 type vxlan id 4100 dstport 4789 local 198.18.0.2 learning",
        "ip link add nbr4100 mtu 1400 type bridge",
        "ip link set nvx4100 master nbr4100",
        "ip link set nbr4100 up",
        "ip link set nvx4100 up",
        f"bridge fdb append {ZERO} dev nvx4100 dst 198.18.0.3",
        f"bridge fdb append {ZERO} dev nvx4100 dst 198.18.0.4",
    ]


def test_a_host_that_matches_needs_nothing():
    links = host(nvx(), link("nbr4100", "bridge"), link("eth0"))
    fdb = flood("nvx4100", "198.18.0.3", "198.18.0.4") + [
        {"mac": "52:54:00:00:00:01", "ifname": "nvx4100", "dst": "198.18.0.9"},  # learned
    ]
    assert nn.plan(state(vxlan()), links, fdb) == ([], [])


def test_only_what_differs_is_changed():
    links = host(nvx(mtu=1500, master=None, up=False), link("nbr4100", "bridge", mtu=1500))
    fdb = flood("nvx4100", "198.18.0.3", "198.18.0.9")
    steps, _ = nn.plan(state(vxlan()), links, fdb)
    assert commands(steps) == [
        "ip link set nvx4100 mtu 1450",
        "ip link set nbr4100 mtu 1450",
        "ip link set nvx4100 master nbr4100",
        "ip link set nvx4100 up",
        f"bridge fdb append {ZERO} dev nvx4100 dst 198.18.0.4",
        f"bridge fdb del {ZERO} dev nvx4100 dst 198.18.0.9",
    ]


@pytest.mark.parametrize(
    "wrong",
    [
        {"local": "198.18.0.7"},
        {"id": 4101},
        {"port": 8472},
        {"learning": False},
        {"group": "239.1.1.1"},
    ],
)
def test_a_vxlan_device_that_differs_in_kind_is_made_again(wrong):
    links = host(nvx(**wrong), link("nbr4100", "bridge"))
    steps, _ = nn.plan(state(vxlan(peers=["198.18.0.3"])), links, flood("nvx4100", "198.18.0.3"))
    assert commands(steps) == [
        "ip link del nvx4100",
        "ip link add nvx4100 mtu 1450 type vxlan id 4100 dstport 4789 local 198.18.0.2 learning",
        "ip link set nvx4100 master nbr4100",
        "ip link set nvx4100 up",
        # the new device starts with no FDB entries
        f"bridge fdb append {ZERO} dev nvx4100 dst 198.18.0.3",
    ]


def test_stale_devices_go_unless_a_vm_is_plugged_in():
    links = host(
        nvx(5),
        link("nbr5", "bridge"),
        nvx(6),
        link("nbr6", "bridge"),
        link("vnet0", "tun", master="nbr6"),
        link("nbr7", "bridge"),
        link("nvx8", "vxlan", master=None),
        link("br0", "bridge"),
        link("nbrx", "bridge"),
        link("nbr", "bridge"),
    )
    steps, kept = nn.plan(state(), links, [])
    assert commands(steps) == [
        "ip link del nvx5",
        "ip link del nbr5",
        "ip link del nbr7",
        "ip link del nvx8",
    ]
    assert kept == [
        {"device": "nbr6", "reason": "still has ports: vnet0 (a VM is plugged in)"},
        {"device": "nvx6", "reason": "its bridge nbr6 is kept"},
    ]


def test_a_bridge_holding_only_nube_devices_is_no_vm_bridge():
    links = host(link("nbr5", "bridge"), nvx(6, master="nbr5"), nvx(4100, master="nbr5"))
    steps, kept = nn.plan(state(vxlan(peers=[])), links, [])
    assert kept == []
    assert commands(steps) == [
        "ip link del nbr5",
        "ip link del nvx6",
        "ip link add nbr4100 mtu 1450 type bridge",
        "ip link set nvx4100 master nbr4100",
        "ip link set nbr4100 up",
    ]


def test_a_wanted_name_taken_by_another_kind_is_made_again():
    links = host(link("nvx4100", "bridge"), link("nbr4100", "vxlan"))
    steps, _ = nn.plan(state(vxlan(peers=[])), links, [])
    assert commands(steps)[:4] == [
        "ip link del nvx4100",
        "ip link add nvx4100 mtu 1450 type vxlan id 4100 dstport 4789 local 198.18.0.2 learning",
        "ip link del nbr4100",
        "ip link add nbr4100 mtu 1450 type bridge",
    ]


def test_the_host_is_checked_before_anything_changes():
    with pytest.raises(nn.InvalidState, match="bridge br0 does not exist on this host"):
        nn.check_host(state({"type": "bridge", "bridge": "br0"}), host(link("eth0")), {LOCAL})
    with pytest.raises(nn.InvalidState, match="eth0 is not a bridge"):
        nn.check_host(state({"type": "bridge", "bridge": "eth0"}), host(link("eth0")), {LOCAL})
    with pytest.raises(nn.InvalidState, match="198.18.0.2 is not an address of this host"):
        nn.check_host(state(vxlan()), host(link("eth0")), {"198.18.0.3"})
    nn.check_host(
        state(vxlan(), {"type": "bridge", "bridge": "br0"}), host(link("br0", "bridge")), {LOCAL}
    )
