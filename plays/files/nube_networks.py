#!/usr/bin/env python3
"""Make this host's Nube networks what a desired state says, changing only what differs.

Usage (as root): nube_networks.py STATE.json

The state (JSON object):
  {"local": "198.18.0.2",
   "networks": [{"type": "vxlan", "vni": 4100, "peers": ["198.18.0.3"], "mtu": 1450,
                 "zone": 7, "rules": [{"protocol": "tcp", "ports": [22, 22]}]},
                {"type": "bridge", "bridge": "br0"}]}
"local" is this host's data address (needed when there is a vxlan network); "mtu" defaults to
1450; each network may carry a "name" (Nube's name for it, never used on the host).

A vxlan network with VNI v is a VXLAN device nvx<v> (id v, UDP port 4789, local address, learning,
no multicast group) enslaved to a Linux bridge nbr<v> (no address, IPv6 link-local included),
both up, with one all-zeros FDB entry per peer (unicast flooding); while the host has any, an
nftables table inet nube_vxlan drops UDP 4789 from anyone but the peers. Every bridge named nbr<digits> and VXLAN device named nvx<digits> is
Nube's: those the state does not want are removed, except a bridge that still has another port
than its nvx (a VM is plugged in): it and its nvx are kept and reported. A device of another
kind bearing such a name (a bond, a VLAN, a veth: the operator's) is never touched: kept and
reported when unwanted, and a state that wants its name is refused. A bridge network names an
existing host bridge, which is only checked. A network's "rules" (its security group) and
"zone" are nube_rules.py's: what may reach its VMs' ports.

Prints one JSON line {"changed": bool, "actions": [commands run], "kept": [{"device", "reason"}]}.
Exit status 0; 2 for a state that is invalid or that this host cannot take (nothing changed);
1 when a command failed midway (the JSON line then lists what was done before it).

Stdlib only, Python 3.9 or later: it runs on the hosts, not in Nube's virtualenv.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import re
import shlex
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # nube_rules.py lies beside it
import nube_rules  # noqa: E402

BRIDGE_PREFIX = "nbr"
VXLAN_PREFIX = "nvx"
OWNED_NAME = re.compile(r"^(nbr|nvx)([0-9]+)$")
VXLAN_PORT = 4789
DEFAULT_MTU = 1450
MAX_VNI = 2**24 - 1
FLOOD_MAC = "00:00:00:00:00:00"
# What Linux accepts as an interface name, narrowed to characters that need no quoting.
IFNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")
# Two runs at once (two network changes reaching the same host) would each plan from a state
# the other is changing: they take turns.
LOCK_PATH = os.environ.get("NUBE_NETWORKS_LOCK", "/run/nube-networks.lock")


class InvalidState(ValueError):
    """The desired state is malformed, or this host cannot take it; nothing was changed."""


class CommandFailed(RuntimeError):
    """A command failed while the plan was applied."""

    def __init__(self, message, done=()):
        super().__init__(message)
        self.done = list(done)


def bridge_name(vni):
    """The bridge of VXLAN network vni."""
    return f"{BRIDGE_PREFIX}{vni}"


def vxlan_name(vni):
    """The VXLAN device of network vni."""
    return f"{VXLAN_PREFIX}{vni}"


# --- the desired state ------------------------------------------------------------------------


def _only_keys(value, allowed, where):
    """Refuse keys a part of the state may not have (a typo must not pass silently)."""
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise InvalidState(f"{where}: unknown key(s) {', '.join(unknown)}")


def _address(value, where):
    """An IP address as ipaddress parses it; multicast and unspecified ones are refused."""
    if not isinstance(value, str):
        raise InvalidState(f"{where}: an IP address is a string, got {value!r}")
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise InvalidState(f"{where}: {value!r} is not an IP address") from None
    if address.is_multicast or address.is_unspecified:
        raise InvalidState(f"{where}: {value} is not a unicast host address")
    return address


def _integer(value, low, high, where):
    """An integer in [low, high] (JSON true/false are not integers here)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidState(f"{where}: must be an integer from {low} to {high}, got {value!r}")
    return value


def _peers(value, local, where):
    """A VXLAN network's peers: distinct addresses of local's family, never local itself."""
    if not isinstance(value, list):
        raise InvalidState(f"{where}: peers must be a list of addresses")
    peers = [_address(item, f"{where}.peers[{index}]") for index, item in enumerate(value)]
    if len(set(peers)) != len(peers):
        raise InvalidState(f"{where}: peers lists an address twice")
    for peer in peers:
        if peer.version != local.version:
            raise InvalidState(f"{where}: peer {peer} is not of local's family ({local})")
        if peer == local:
            raise InvalidState(f"{where}: peer {peer} is this host's own address")
    return sorted(str(peer) for peer in peers)


def _vxlan(network, local, where):
    """One vxlan network checked: (vni, {"peers", "mtu"})."""
    _only_keys(network, {"type", "name", "vni", "peers", "mtu", "zone", "rules", "ports"}, where)
    if local is None:
        raise InvalidState(f"{where}: a vxlan network needs the state's local address")
    vni = _integer(network.get("vni"), 1, MAX_VNI, f"{where}.vni")
    mtu = _integer(network.get("mtu", DEFAULT_MTU), 68, 65535, f"{where}.mtu")
    return vni, {"peers": _peers(network.get("peers", []), local, where), "mtu": mtu}


def _bridge(network, where):
    """One bridge network checked: the existing bridge's name."""
    _only_keys(network, {"type", "name", "bridge", "rules", "ports"}, where)
    name = network.get("bridge")
    if not isinstance(name, str) or not IFNAME.match(name):
        raise InvalidState(f"{where}.bridge: {name!r} is not an interface name")
    if OWNED_NAME.match(name):
        raise InvalidState(f"{where}.bridge: {name} is a name Nube keeps for its own devices")
    return name


def _network(network, local, where, state):
    """Check one network and add it to state["vxlans"] or state["bridges"]."""
    if not isinstance(network, dict):
        raise InvalidState(f"{where}: a network is a JSON object")
    kind = network.get("type")
    if not isinstance(network.get("name", ""), str):
        raise InvalidState(f"{where}.name: must be a string")
    if kind == "vxlan":
        vni, settings = _vxlan(network, local, where)
        if vni in state["vxlans"]:
            raise InvalidState(f"{where}: VNI {vni} is listed twice")
        state["vxlans"][vni] = settings
        bridge = bridge_name(vni)
    elif kind == "bridge":
        bridge = _bridge(network, where)
        if bridge not in state["bridges"]:
            state["bridges"].append(bridge)
    else:
        raise InvalidState(f"{where}.type: must be vxlan or bridge, got {kind!r}")
    try:
        rules = network.get("rules")
        rules = None if rules is None else nube_rules.parse_rules(rules, where)
        zone = nube_rules.parse_zone(network.get("zone"), where)
        ports = nube_rules.parse_ports(network.get("ports"), where)
    except nube_rules.BadRules as error:
        raise InvalidState(str(error)) from None
    guarded = ports if rules is not None else []  # a network with rules checks addresses too
    _add_filter(
        state["filters"],
        {"bridge": bridge, "zone": zone, "rules": rules, "ports": ports, "guarded": guarded},
    )


def _add_filter(filters, new):
    """Record a network's rules and ports by its bridge. Two bridge networks on one host
    bridge share its ports: each port lets in what either network's rules let in, and each
    keeps its own network's address checks."""
    taken = {port["tap"] for known in filters for port in known["ports"]}
    if any(port["tap"] in taken for port in new["ports"]):
        raise InvalidState(f"a tap of bridge {new['bridge']} is listed on two networks")
    for known in filters:
        if known["bridge"] == new["bridge"]:
            if known["rules"] is None or new["rules"] is None:
                known["rules"] = None
            else:
                known["rules"] += [rule for rule in new["rules"] if rule not in known["rules"]]
            known["ports"] += new["ports"]
            known["guarded"] += new["guarded"]
            return
    filters.append(new)


def parse_state(data):
    """The desired state checked: {"local", "vxlans": {vni: {"peers", "mtu"}}, "bridges"}."""
    if not isinstance(data, dict):
        raise InvalidState("the state must be a JSON object")
    _only_keys(data, {"local", "networks"}, "the state")
    networks = data.get("networks")
    if not isinstance(networks, list):
        raise InvalidState("the state's networks must be a list")
    local = None if data.get("local") is None else _address(data["local"], "local")
    state = {
        "local": None if local is None else str(local),
        "vxlans": {},
        "bridges": [],
        "filters": [],
    }
    for index, network in enumerate(networks):
        _network(network, local, f"networks[{index}]", state)
    state["filters"].sort(key=lambda f: f["bridge"])
    return state


def load_state(path):
    """Read and check the state file."""
    try:
        with open(path, encoding="utf-8") as source:
            data = json.load(source)
    except OSError as error:
        raise InvalidState(f"cannot read {path}: {error.strerror}") from None
    except ValueError as error:
        raise InvalidState(f"{path} is not JSON: {error}") from None
    return parse_state(data)


# --- the host as it is ------------------------------------------------------------------------


def run(argv):
    """Run a command; its stdout, or CommandFailed with what it said."""
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        said = (result.stderr or result.stdout).strip()
        raise CommandFailed(f"{shlex.join(argv)} failed ({result.returncode}): {said}")
    return result.stdout


def read_host():
    """The host's links by name, its FDB entries and its own addresses."""
    links = {link["ifname"]: link for link in json.loads(run(["ip", "-j", "-d", "link", "show"]))}
    fdb = json.loads(run(["bridge", "-j", "fdb", "show"]) or "[]")
    addresses = set()
    for link in json.loads(run(["ip", "-j", "address", "show"])):
        for info in link.get("addr_info", []):
            with contextlib.suppress(KeyError, ValueError):
                addresses.add(str(ipaddress.ip_address(info["local"])))
    return links, fdb, addresses


def _kind(link):
    """A link's kind (bridge, vxlan, veth...), or '' for a plain device."""
    return (link.get("linkinfo") or {}).get("info_kind", "")


def foreign(name, link):
    """Why a device bearing one of Nube's names is not Nube's (never removed or remade), or
    None when it is: nbr<n> is a bridge, nvx<n> a VXLAN device."""
    kind = _kind(link)
    wanted = "bridge" if name.startswith(BRIDGE_PREFIX) else "vxlan"
    return None if kind == wanted else f"not Nube's: a {kind or 'device'}, not a {wanted}"


def _vxlan_matches(link, vni, local):
    """Whether an existing device is the VXLAN device wanted (else it is made again)."""
    if _kind(link) != "vxlan":
        return False
    data = link["linkinfo"].get("info_data") or {}
    its_local = data.get("local") or data.get("local6")
    return (
        data.get("id") == vni
        and data.get("port") == VXLAN_PORT
        and its_local is not None
        and str(ipaddress.ip_address(its_local)) == local
        and data.get("learning") is True
        and not any(data.get(key) for key in ("group", "group6", "remote", "remote6"))
    )


def flood_peers(fdb, device):
    """The peers a VXLAN device floods to: its all-zeros FDB entries' destinations."""
    return {
        str(ipaddress.ip_address(entry["dst"]))
        for entry in fdb
        if entry.get("ifname") == device and entry.get("mac") == FLOOD_MAC and "dst" in entry
    }


def check_host(state, links, addresses):
    """Refuse a state this host cannot take, before anything changes."""
    for name in state["bridges"]:
        if name not in links:
            raise InvalidState(f"bridge {name} does not exist on this host")
        if _kind(links[name]) != "bridge":
            raise InvalidState(f"{name} is not a bridge (it is a {_kind(links[name]) or 'device'})")
    if state["vxlans"] and state["local"] not in addresses:
        raise InvalidState(f"local address {state['local']} is not an address of this host")
    for vni in state["vxlans"]:
        for name in (bridge_name(vni), vxlan_name(vni)):
            why = foreign(name, links[name]) if name in links else None
            if why:
                raise InvalidState(f"{name} exists and is {why}")


# --- the plan ---------------------------------------------------------------------------------


def _ports(links, bridge):
    """The devices enslaved to a bridge."""
    return sorted(name for name, link in links.items() if link.get("master") == bridge)


def _stale_pair(number, links, wanted, kept):
    """Commands removing nbr<number> and nvx<number> where unwanted, unless a VM holds the
    bridge: then both are kept and reported in kept."""
    bridge, vxlan = BRIDGE_PREFIX + number, VXLAN_PREFIX + number
    stale = []
    for name in (vxlan, bridge):
        if name in links and name not in wanted:
            why = foreign(name, links[name])
            if why:  # the operator's device that happens to bear the name: never removed
                kept.append({"device": name, "reason": why})
            else:
                stale.append(name)
    # Nube's own devices on it are no VM's (a misplaced one is moved or removed anyway)
    others = [port for port in _ports(links, bridge) if not OWNED_NAME.match(port)]
    if bridge not in stale or not others:
        return [["ip", "link", "del", name] for name in stale]
    kept.append(
        {"device": bridge, "reason": f"still has ports: {', '.join(others)} (a VM is plugged in)"}
    )
    if vxlan in stale:
        kept.append({"device": vxlan, "reason": f"its bridge {bridge} is kept"})
    return []


def _stale(state, links, kept):
    """Commands removing Nube's devices the state does not want; kept ones go to kept."""
    wanted = {name(vni) for vni in state["vxlans"] for name in (bridge_name, vxlan_name)}
    numbers = {match.group(2) for match in map(OWNED_NAME.match, links) if match}
    steps = []
    for number in sorted(numbers, key=lambda number: (len(number), number)):
        steps += _stale_pair(number, links, wanted, kept)
    return steps


def _mtu(name, link, mtu):
    """The command setting an existing link's MTU, when it differs."""
    return [] if link.get("mtu") == mtu else [["ip", "link", "set", name, "mtu", str(mtu)]]


def _vxlan_device(vni, net, local, links):
    """Commands for nvx<vni> itself: (steps, made), made when it is (re)created."""
    name, mtu = vxlan_name(vni), str(net["mtu"])
    link = links.get(name)
    if link is not None and _vxlan_matches(link, vni, local):
        return _mtu(name, link, net["mtu"]), False
    steps = [] if link is None else [["ip", "link", "del", name]]
    steps.append(
        ["ip", "link", "add", name, "mtu", mtu, "type", "vxlan", "id", str(vni)]
        + ["dstport", str(VXLAN_PORT), "local", local, "learning"]
    )
    return steps, True


def _no_link_local(name, link):
    """Commands taking an existing bridge's IPv6 link-local addresses away for good (a kernel
    without IPv6 lists no generation mode: nothing to do)."""
    if link.get("inet6_addr_gen_mode", "none") == "none":
        return []
    return [
        ["ip", "link", "set", name, "addrgenmode", "none"],
        ["ip", "-6", "addr", "flush", "dev", name, "scope", "link"],
    ]


def _bridge_device(vni, net, links):
    """Commands for nbr<vni> itself: (steps, made). It never has an address of its own, not even
    an automatic IPv6 link-local one: guests on the bridge would reach the host through it."""
    name, mtu = bridge_name(vni), str(net["mtu"])
    link = links.get(name)
    if link is not None and _kind(link) == "bridge":
        return _mtu(name, link, net["mtu"]) + _no_link_local(name, link), False
    steps = [] if link is None else [["ip", "link", "del", name]]
    steps.append(["ip", "link", "add", name, "mtu", mtu, "type", "bridge"])
    if any("inet6_addr_gen_mode" in other for other in links.values()):  # the kernel has IPv6
        steps.append(["ip", "link", "set", name, "addrgenmode", "none"])  # before it goes up
    return steps, True


def _is_up(link):
    """Whether a link is administratively up."""
    return "UP" in (link.get("flags") or [])


def _vxlan_network(vni, net, local, links, fdb):
    """Commands making VXLAN network vni what net says."""
    vxlan, bridge = vxlan_name(vni), bridge_name(vni)
    vxlan_steps, vxlan_made = _vxlan_device(vni, net, local, links)
    bridge_steps, bridge_made = _bridge_device(vni, net, links)
    steps = vxlan_steps + bridge_steps
    if vxlan_made or bridge_made or links[vxlan].get("master") != bridge:
        steps.append(["ip", "link", "set", vxlan, "master", bridge])
    for name, made in ((bridge, bridge_made), (vxlan, vxlan_made)):
        if made or not _is_up(links[name]):
            steps.append(["ip", "link", "set", name, "up"])
    have = set() if vxlan_made else flood_peers(fdb, vxlan)
    want = set(net["peers"])
    flood = ["bridge", "fdb"]
    steps += [flood + ["append", FLOOD_MAC, "dev", vxlan, "dst", p] for p in sorted(want - have)]
    steps += [flood + ["del", FLOOD_MAC, "dev", vxlan, "dst", p] for p in sorted(have - want)]
    return steps


def plan(state, links, fdb):
    """The commands that make the host's devices match the state, and the devices kept in
    spite of it."""
    kept = []
    steps = _stale(state, links, kept)
    for vni in sorted(state["vxlans"]):
        steps += _vxlan_network(vni, state["vxlans"][vni], state["local"], links, fdb)
    return steps, kept


# --- who may send VXLAN to this host ----------------------------------------------------------
# Linux takes VXLAN packets on UDP 4789 at every address of the host, from anyone, and learns
# their sender as the home of the MACs inside: without a filter, anything that reaches a host
# address could inject frames into every overlay and draw traffic to itself. Nube's table lets
# only the peers' data addresses in; it exists while the host has a VXLAN network.

FILTER_TABLE = "nube_vxlan"


def wanted_filter(state):
    """The peers (a sorted list) the filter must let in, or None when no filter is wanted."""
    if not state["vxlans"]:
        return None
    return sorted({peer for net in state["vxlans"].values() for peer in net["peers"]})


def filter_ruleset(peers):
    """The table's whole definition, replacing any earlier one in the same transaction."""
    four = [p for p in peers if ipaddress.ip_address(p).version == 4]
    six = [p for p in peers if ipaddress.ip_address(p).version == 6]

    def elements(addresses):
        return f" elements = {{ {', '.join(addresses)} }};" if addresses else ""

    return (
        f"table inet {FILTER_TABLE}\n"
        f"delete table inet {FILTER_TABLE}\n"
        f"table inet {FILTER_TABLE} {{\n"
        f"  set peers4 {{ type ipv4_addr;{elements(four)} }}\n"
        f"  set peers6 {{ type ipv6_addr;{elements(six)} }}\n"
        "  chain input {\n"
        "    type filter hook input priority filter - 10; policy accept;\n"
        f"    udp dport {VXLAN_PORT} ip saddr @peers4 accept\n"
        f"    udp dport {VXLAN_PORT} ip6 saddr @peers6 accept\n"
        f"    udp dport {VXLAN_PORT} counter drop\n"
        "  }\n"
        "}\n"
    )


def filter_steps(state, present, vxlan_kept=False):
    """The nft command that makes the filter what the state wants (present: the peers the
    table lets in now, or None when there is no table). A VXLAN device kept although
    unwanted (a VM still on its bridge) still takes packets: the table stays as it is."""
    wanted = wanted_filter(state)
    if wanted is None:
        if present is None or vxlan_kept:
            return []
        return [["nft", "delete", "table", "inet", FILTER_TABLE]]
    if present is not None and sorted(present) == wanted:
        return []
    return [["nft", filter_ruleset(wanted)]]


def read_filter():
    """The peers Nube's VXLAN filter lets in (sorted), or None when the table is absent or not
    the one this script writes (it is then written again)."""
    tables = json.loads(run(["nft", "-j", "list", "tables"]) or "{}").get("nftables", [])
    if not any(t.get("table", {}).get("name") == FILTER_TABLE for t in tables):
        return None
    items = json.loads(run(["nft", "-j", "list", "table", "inet", FILTER_TABLE]))["nftables"]
    sets = {i["set"]["name"]: i["set"].get("elem", []) for i in items if "set" in i}
    rules = [i for i in items if "rule" in i]
    if set(sets) != {"peers4", "peers6"} or len(rules) != 3:
        return [""]  # not as written: never equal to a wanted list, so written again
    if any(not isinstance(e, str) for e in sets["peers4"] + sets["peers6"]):
        return [""]
    return sorted(sets["peers4"] + sets["peers6"])


def rules_steps(state, links, kept):
    """The commands making the security groups' tables what the state wants (nube_rules.py),
    after br_netfilter is on for the bridges that carry rules (those this run makes get it
    once made); a bridge kept with a VM on it keeps the tables as they are."""
    want = nube_rules.wanted(state["filters"])
    bridge_kept = any(k["device"].startswith(BRIDGE_PREFIX) for k in kept)
    made = {f["bridge"] for f in state["filters"] if f["bridge"] not in links}
    loaded = nube_rules.br_netfilter_loaded()
    return nube_rules.br_netfilter_steps(state["filters"], links, made, loaded) + nube_rules.steps(
        want, nube_rules.read_present(run), bridge_kept
    )


# --- running it -------------------------------------------------------------------------------


def apply(steps):
    """Run the commands in order; the list of those run (CommandFailed carries it too)."""
    done = []
    for argv in steps:
        try:
            run(argv)
        except CommandFailed as error:
            raise CommandFailed(str(error), done) from None
        done.append(shlex.join(argv))
    return done


@contextlib.contextmanager
def _locked():
    """Hold the host-wide lock of this script."""
    with open(LOCK_PATH, "a", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _report(done, kept):
    """The one JSON line this script prints."""
    print(json.dumps({"changed": bool(done), "actions": done, "kept": kept}))


def main(args=None):
    """Read the state file named on the command line and make the host match it."""
    args = sys.argv[1:] if args is None else args
    if len(args) != 1:
        print("usage: nube_networks.py STATE.json", file=sys.stderr)
        return 2
    try:
        state = load_state(args[0])
        with _locked():
            links, fdb, addresses = read_host()
            check_host(state, links, addresses)
            steps, kept = plan(state, links, fdb)
            vxlan_kept = any(k["device"].startswith(VXLAN_PREFIX) for k in kept)
            steps += filter_steps(state, read_filter(), vxlan_kept)
            steps += rules_steps(state, links, kept)
            done = apply(steps)
    except InvalidState as error:
        print(f"nube_networks: refused, nothing changed: {error}", file=sys.stderr)
        return 2
    except CommandFailed as error:
        _report(error.done, [])
        print(f"nube_networks: {error}", file=sys.stderr)
        return 1
    _report(done, kept)
    return 0


if __name__ == "__main__":
    sys.exit(main())
