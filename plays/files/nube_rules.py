"""Security groups on a host: what the VMs' ports of each Nube network may send and receive.

Imported by nube_networks.py (same folder, stdlib only, Python 3.9 or later).

A network of the state may carry "rules": [{"protocol": "tcp"|"udp"|"icmp"|"any",
"ports"?: [low, high], "source"?: CIDR}] (no source: any), "ports": [{"tap", "mac", "ip"}]
(its VMs' NICs on this host: tap nt<NIC id>) and, for a vxlan network, "zone" (its
connection-tracking zone, 1-65535). Two nftables tables:

- bridge nube_ports, while any network has ports or rules: a VM's port sends only from its
  NIC's MAC, and only IPv4, ARP and RARP frames (and IPv6 on a network without rules); on a
  network with rules (its ports "guarded") only from its IPv4 address, ARP as itself, no IPv6.
  Only those frames leave through a VM's port: a VLAN-tagged or PPPoE frame would pass
  br_netfilter unseen. A port no NIC of the state names sends nothing. It marks what a
  guarded port sends and what leaves through any VM port. This kernel's bridge family cannot
  track connections, nor name a port's bridge.
- inet nube_rules, while any network has rules: sees the same frames as IP packets
  (br_netfilter, turned on for each bridge that carries rules, hands bridged traffic to the
  inet hooks, with connection tracking). A connection a guarded port opened is marked so (ct
  mark); a packet leaving through a VM's port goes through its network's chain, found by the
  bridge it leaves: replies to a connection a VM opened pass, then the rules, then it is
  dropped. Replies are told by that mark, not by the connection's state alone: a packet forged
  to create a connection (its source a VM's own address, from a machine that is no VM port)
  opens nothing. A marked packet on a bridge no network of the state names is dropped too.
  Each vxlan bridge tracks (and reassembles) its connections in its own zone, so the same
  addresses on two overlays never share a connection.

A network without "rules" lets everything in (its rules let in anything from anywhere, or the
state was written before rules existed). Each table carries the digest of its definition as a
comment: an unchanged one is not written again.
"""

import hashlib
import ipaddress
import os
import re

PORTS_TABLE = "nube_ports"
RULES_TABLE = "nube_rules"
# skb marks Nube sets on its bridges' frames (any other value there is cleared first)
MARK_MASK, MARK_BASE = "0xffffff00", "0x4e75be00"
FROM_PORT = "0x4e75be01"  # entered from a VM's port (and, as a ct mark: a VM opened it)
TO_PORT = "0x4e75be02"  # leaves through a VM's port
TAP_PATTERN = "nt*"
PROTOCOLS = ("tcp", "udp", "icmp", "any")
MAX_RULES = 256
MAX_ZONE = 65535
BR_NETFILTER = "/proc/sys/net/bridge"  # present once br_netfilter is loaded
HOST_WIDE = ("net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables")
_DIGEST = re.compile(r'comment "nube ([0-9a-f]{64})"')
_CIDR = re.compile(r"[0-9A-Fa-f.:]+/[0-9]{1,3}", re.ASCII)
_TAP = re.compile(r"nt[0-9]{1,13}", re.ASCII)
_MAC = re.compile(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}", re.ASCII)
_IPV4 = re.compile(r"[0-9]{1,3}(\.[0-9]{1,3}){3}", re.ASCII)
MAX_PORTS = 4096


class BadRules(ValueError):
    """The rules of a network are malformed."""


def _port_range(value, where):
    """[low, high] ports, checked."""
    if (
        not isinstance(value, list)
        or len(value) != 2
        or any(isinstance(p, bool) or not isinstance(p, int) for p in value)
        or not 1 <= value[0] <= value[1] <= 65535
    ):
        raise BadRules(f"{where}.ports: must be [low, high] ports from 1 to 65535, got {value!r}")
    return value


def parse_rule(rule, where):
    """One rule checked: {"protocol", "ports"?: (low, high), "source"?: network}."""
    if not isinstance(rule, dict) or set(rule) - {"protocol", "ports", "source"}:
        raise BadRules(f"{where}: a rule is an object with protocol, ports and source only")
    protocol = rule.get("protocol")
    if protocol not in PROTOCOLS:
        raise BadRules(f"{where}.protocol: must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    clean = {"protocol": protocol}
    if "ports" in rule:
        if protocol not in ("tcp", "udp"):
            raise BadRules(f"{where}.ports: only tcp and udp rules have ports")
        clean["ports"] = tuple(_port_range(rule["ports"], where))
    if "source" in rule:
        source = rule["source"]
        try:
            # digits, dots, colons and a prefix only: an IPv6 scope id (fe80::%x/128) would
            # put its text into the ruleset
            if not isinstance(source, str) or not _CIDR.fullmatch(source):
                raise ValueError(source)
            clean["source"] = ipaddress.ip_network(source, strict=True)
        except ValueError:
            raise BadRules(f"{where}.source: {source!r} is not a network") from None
    return clean


def parse_rules(value, where):
    """A network's rules list checked."""
    if not isinstance(value, list) or len(value) > MAX_RULES:
        raise BadRules(f"{where}.rules: must be a list of at most {MAX_RULES} rules")
    return [parse_rule(rule, f"{where}.rules[{index}]") for index, rule in enumerate(value)]


def parse_ports(value, where):
    """A network's ports on this host, checked: [{"tap", "mac", "ip"}] (a VM NIC's tap, the
    only MAC and IPv4 address it may send as)."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_PORTS:
        raise BadRules(f"{where}.ports: must be a list of at most {MAX_PORTS} ports")
    ports = []
    for index, port in enumerate(value):
        at = f"{where}.ports[{index}]"
        if not isinstance(port, dict) or set(port) != {"tap", "mac", "ip"}:
            raise BadRules(f"{at}: a port is an object with tap, mac and ip")
        tap, mac, ip = port["tap"], port["mac"], port["ip"]
        if not isinstance(tap, str) or not _TAP.fullmatch(tap):
            raise BadRules(f"{at}.tap: {tap!r} is not a VM's tap (nt<digits>)")
        if not isinstance(mac, str) or not _MAC.fullmatch(mac) or int(mac[:2], 16) & 1:
            raise BadRules(f"{at}.mac: {mac!r} is not a unicast MAC address")
        try:
            if not isinstance(ip, str) or not _IPV4.fullmatch(ip):
                raise ValueError(ip)
            address = ipaddress.IPv4Address(ip)
        except ValueError:
            raise BadRules(f"{at}.ip: {ip!r} is not an IPv4 address") from None
        ports.append({"tap": tap, "mac": mac.lower(), "ip": str(address)})
    return ports


def parse_zone(value, where):
    """A vxlan network's conntrack zone (None: the host's own)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ZONE:
        raise BadRules(f"{where}.zone: must be an integer from 1 to {MAX_ZONE}, got {value!r}")
    return value


# --- the tables -------------------------------------------------------------------------------


def _match(rule):
    """The nftables match of one rule (empty: everything)."""
    words = []
    source = rule.get("source")
    if source is not None:  # written from the parsed value, never from the state's text
        family = "ip" if source.version == 4 else "ip6"
        words.append(f"{family} saddr {source.network_address}/{source.prefixlen}")
    protocol = rule["protocol"]
    if protocol in ("tcp", "udp") and "ports" in rule:
        low, high = rule["ports"]
        words.append(f"{protocol} dport {low}" + (f"-{high}" if high != low else ""))
    elif protocol in ("tcp", "udp"):
        words.append(f"meta l4proto {protocol}")
    elif protocol == "icmp":
        words.append("meta l4proto { icmp, ipv6-icmp }")
    return " ".join(words)


def _chain(name, rules):
    """One network's chain: replies to what its VMs opened, related ICMP errors, its rules,
    then drop."""
    lines = [
        f"  chain {name} {{",
        # replies (and their ICMP errors) to connections a VM's port opened
        f"    ct direction reply ct mark {FROM_PORT} accept",
        # ICMP errors about a connection already there (path MTU, unreachable)
        "    ct state related meta l4proto { icmp, ipv6-icmp } accept",
        "    ct state invalid drop",
    ]
    lines += ["    " + " ".join(filter(None, (_match(rule), "accept"))) for rule in rules]
    lines += ["    counter drop", "  }"]
    return lines


def chain_name(index, bridge):
    """The chain of the network on this bridge (the index keeps br.0 and br-0 apart)."""
    return f"net{index}_{re.sub('[^A-Za-z0-9_]', '_', bridge)}"


def wanted(filters):
    """The tables' definitions for filters, a list of {"bridge", "zone", "rules", "ports"}
    (rules None: everything let in): {"bridge": (text, digest) or None, "inet": ... or None},
    or None when neither is wanted. The bridge table exists while any network has ports or
    rules; the inet one while any has rules."""
    ports = [port for f in filters for port in f["ports"]]
    ruled = [f for f in filters if f["rules"] is not None]
    if not ports and not ruled:
        return None
    guarded = [port for f in filters for port in f["guarded"]]
    bridge = _with_digest(_bridge_table(ports, guarded))
    inet = _with_digest(_inet_table(filters)) if ruled else None
    return {"bridge": bridge, "inet": inet}


def _elements(items):
    """A set's elements clause (empty for no item)."""
    return f" elements = {{ {', '.join(items)} }};" if items else ""


def _bridge_table(ports, guarded):
    """The bridge table. Every VM port sends only from its NIC's MAC, and only IPv4, ARP and
    RARP (QEMU's announcement after a migration) frames, plus IPv6 on an open network: a
    VLAN-tagged or PPPoE frame would pass br_netfilter unseen (and, onto a LAN, hop VLANs). A
    port of a network with rules (guarded) also sends only from its IPv4 address, ARP as
    itself, and no IPv6 (the networks are IPv4: an IPv6 source, link-local included, could not
    be tied to the NIC). A port no NIC of the state names sends nothing. Marks for the inet
    table: what a guarded port sends, and what leaves through any VM port."""
    macs = [f'"{p["tap"]}" . {p["mac"]}' for p in ports]
    taps = [f'"{p["tap"]}"' for p in guarded]
    addresses = [f'"{p["tap"]}" . {p["mac"]} . {p["ip"]}' for p in guarded]
    clear = f"meta mark and {MARK_MASK} == {MARK_BASE} meta mark set 0x0"
    frames = "{ ip, ip6, arp, 0x8035 }"
    return [
        f"table bridge {PORTS_TABLE} {{",
        f"  set nic_macs {{ type ifname . ether_addr;{_elements(macs)} }}",
        f"  set guarded {{ type ifname;{_elements(taps)} }}",
        f"  set nic_addresses {{ type ifname . ether_addr . ipv4_addr;{_elements(addresses)} }}",
        "  chain prerouting {",
        "    type filter hook prerouting priority -200; policy accept;",
        f"    {clear}",
        f'    iifname "{TAP_PATTERN}" jump from_port',
        "  }",
        "  chain from_port {",
        f"    ether type != {frames} counter drop",
        "    iifname . ether saddr != @nic_macs counter drop",
        "    iifname != @guarded return",  # an open network's port: its MAC is enough
        "    ether type ip6 counter drop",
        "    ether type ip iifname . ether saddr . ip saddr != @nic_addresses counter drop",
        # ARP as itself, or a probe (sender 0.0.0.0) for address conflict detection
        "    ether type arp arp saddr ip 0.0.0.0 iifname . arp saddr ether != @nic_macs"
        " counter drop",
        "    ether type arp arp saddr ip != 0.0.0.0"
        " iifname . arp saddr ether . arp saddr ip != @nic_addresses counter drop",
        f"    meta mark set {FROM_PORT}",
        "  }",
        "  chain forward {",
        "    type filter hook forward priority -200; policy accept;",
        f'    oifname "{TAP_PATTERN}" ether type != {frames} counter drop',
        "    oifname @guarded ether type ip6 counter drop",
        f'    oifname "{TAP_PATTERN}" meta mark set {TO_PORT}',
        "  }",
        "}",
    ]


def _inet_table(filters):
    """The inet table: each network's zone, the mark of connections VMs open, and each
    network's chain for the packets leaving through its VMs' ports."""
    verdicts = ", ".join(
        f'"{f["bridge"]}" : '
        + ("accept" if f["rules"] is None else f"jump {chain_name(index, f['bridge'])}")
        for index, f in enumerate(filters)
    )
    body = [
        "  chain zones {",  # before defragmentation (-400): fragments reassemble per zone too
        "    type filter hook prerouting priority -450; policy accept;",
    ]
    body += [f'    iifname "{f["bridge"]}" ct zone set {f["zone"]}' for f in filters if f["zone"]]
    body += [
        "  }",
        "  chain origin {",  # after conntrack (-200) has found or made the connection
        "    type filter hook prerouting priority -150; policy accept;",
        f"    meta mark {FROM_PORT} meta nfproto ipv4 ct state new ct mark set {FROM_PORT}",
        "  }",
        "  chain ports {",
        "    type filter hook forward priority filter - 10; policy accept;",
        f"    meta mark != {TO_PORT} return",
        f"    oifname vmap {{ {verdicts} }}",
        "    counter drop",
        "  }",
    ]
    for index, f in enumerate(filters):
        if f["rules"] is not None:
            body += _chain(chain_name(index, f["bridge"]), f["rules"])
    return [f"table inet {RULES_TABLE} {{", *body, "}"]


def _with_digest(lines):
    """A table's definition with its digest as the table's comment (inserted after its first
    line), so that reading it back tells whether it is the one wanted."""
    text = "\n".join(lines) + "\n"
    digest = hashlib.sha256(text.encode()).hexdigest()
    return "\n".join([lines[0], f'  comment "nube {digest}"', *lines[1:]]) + "\n", digest


def read_present(run):
    """{"bridge": digest, "inet": digest} of the tables as they are (None: absent; "" :
    present but not as this script writes them)."""
    tables = run(["nft", "list", "tables"]).split("\n")
    present = {}
    for family, name in (("bridge", PORTS_TABLE), ("inet", RULES_TABLE)):
        if f"table {family} {name}" not in tables:
            present[family] = None
            continue
        found = _DIGEST.search(run(["nft", "list", "table", family, name]))
        present[family] = found.group(1) if found else ""
    return present


def steps(want, present, keep):
    """The commands making the tables what want says (present: read_present's answer). keep:
    Nube bridges stay although unwanted (a VM is still plugged in): the tables then stay too."""
    out = []
    for family, name in (("bridge", PORTS_TABLE), ("inet", RULES_TABLE)):
        have = present[family]
        if want is None or want[family] is None:
            if have is not None and not keep:
                out.append(["nft", "delete", "table", family, name])
            continue
        text, digest = want[family]
        if have != digest:
            replace = f"table {family} {name}\ndelete table {family} {name}\n"
            out.append(["nft", replace + text])
    return out


def br_netfilter_steps(filters, links, made, loaded):
    """Commands handing the bridged traffic of each bridge that carries rules to the inet hooks
    (br_netfilter, per bridge: the host's other bridges stay as they are). links: the host's
    links as read; made: bridges made in this run; loaded: whether br_netfilter is."""
    bridges = [f["bridge"] for f in filters if f["rules"] is not None]
    out = []
    if bridges and not loaded:
        # loading it turns it on for every bridge of the host: off again, host-wide (nothing
        # relied on it, since it was not loaded), and on for Nube's bridges below
        out.append(["modprobe", "br_netfilter"])
        out += [["sysctl", "-q", "-w", f"{name}=0"] for name in HOST_WIDE]
    for bridge in bridges:
        data = ((links.get(bridge) or {}).get("linkinfo") or {}).get("info_data") or {}
        if (
            bridge in made
            or data.get("nf_call_iptables") != 1
            or data.get("nf_call_ip6tables") != 1
        ):
            out.append(
                ["ip", "link", "set", "dev", bridge, "type", "bridge"]
                + ["nf_call_iptables", "1", "nf_call_ip6tables", "1"]
            )
    return out


def br_netfilter_loaded():
    """Whether br_netfilter is in the kernel (its settings exist)."""
    return os.path.isdir(BR_NETFILTER)
