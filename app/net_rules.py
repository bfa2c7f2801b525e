"""A network's security group: the inbound traffic its VMs' ports let in, checked and written.

A rule lets in one protocol (tcp, udp, icmp or any), for tcp and udp optionally one port or a
range, from one source: any address, the network's own range, or a CIDR. Replies to a VM's own
connections always pass (the hosts track connections); everything else is dropped at the VM's
port. Pure functions: rules as the API takes them ({"protocol", "ports", "source"}), as one line
of text (`tcp/22 from any`, for the client and the forms), and as the hosts' script takes them.
"""

import ipaddress
import json
import re

from .errors import InvalidInput

PROTOCOLS = ("tcp", "udp", "icmp", "any")
PORTED = ("tcp", "udp")
SOURCES = ("any", "network")
RULES_MAX = 64
# What a new network lets in: its own VMs, and SSH from anywhere (the default).
DEFAULT_RULES = (
    {"protocol": "any", "source": "network"},
    {"protocol": "tcp", "ports": "22", "source": "any"},
)
# What a network made before security groups existed lets in: everything, as it did.
OPEN_RULES = ({"protocol": "any", "source": "any"},)
RULE_KEYS = ("protocol", "ports", "source")
SYNTAX = "PROTOCOL[/PORT[-PORT]] [from any|network|CIDR], e.g. tcp/22 from any"
_PORTS = re.compile(r"[0-9]{1,5}(-[0-9]{1,5})?", re.ASCII)
_CIDR = re.compile(r"[0-9A-Fa-f.:]+/[0-9]{1,3}", re.ASCII)


def _ports(value, protocol, where):
    """A rule's ports as canonical text ("22" or "8000-8090"), or None for all of them."""
    if value in (None, ""):
        return None
    if protocol not in PORTED:
        raise InvalidInput(f"{where}: ports are for tcp and udp rules, not {protocol}")
    text = (
        str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""
    )
    if not _PORTS.fullmatch(text):
        raise InvalidInput(
            f"{where}: ports must be a port or a range like 8000-8090, not {value!r:.40}"
        )
    low, _, high = text.partition("-")
    low, high = int(low), int(high or low)
    if not 1 <= low <= high <= 65535:
        raise InvalidInput(
            f"{where}: ports must be from 1 to 65535, low to high, not {value!r:.40}"
        )
    return str(low) if low == high else f"{low}-{high}"


def _source(value, where):
    """A rule's source: any, network, or a CIDR (IPv4 or IPv6, host bits zero)."""
    if value in (None, ""):
        return "any"
    if not isinstance(value, str):
        raise InvalidInput(f"{where}: source must be any, network or a CIDR, not {value!r:.40}")
    value = value.strip()
    if value in SOURCES:
        return value
    try:
        # only digits, dots, colons and a prefix: ipaddress also takes an IPv6 scope id
        # (fe80::%anything/128), which would reach the hosts' nftables text
        if not _CIDR.fullmatch(value):
            raise ValueError("only digits, dots, colons and /PREFIX")
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as error:
        raise InvalidInput(
            f"{where}: source must be any, network or a CIDR such as 10.0.0.0/8, not"
            f" {value!r:.40} ({error})"
        ) from None
    return f"{network.network_address}/{network.prefixlen}"


def check_rule(rule, where="rule"):
    """One rule in canonical form: {"protocol", "source"} and "ports" when it has some."""
    if isinstance(rule, str):
        rule = parse_text(rule, where)
    if not isinstance(rule, dict):
        raise InvalidInput(f"{where} must be an object {{protocol, ports?, source?}} or text")
    unknown = sorted(set(rule) - set(RULE_KEYS))
    if unknown:
        raise InvalidInput(f"{where}: unknown key(s) {', '.join(unknown)}")
    protocol = rule.get("protocol", "any")
    if protocol not in PROTOCOLS:
        raise InvalidInput(
            f"{where}: protocol must be one of {', '.join(PROTOCOLS)}, not {protocol!r:.20}"
        )
    clean = {"protocol": protocol}
    ports = _ports(rule.get("ports"), protocol, where)
    if ports is not None:
        clean["ports"] = ports
    clean["source"] = _source(rule.get("source"), where)
    return clean


def check_rules(value):
    """A network's rules, each checked, duplicates dropped (first kept); None gives the
    defaults. An empty list is allowed: only replies to the VMs' own connections get in."""
    if value is None:
        return [dict(rule) for rule in DEFAULT_RULES]
    if isinstance(value, str):
        value = [line for line in value.splitlines() if line.strip()]
    if not isinstance(value, list | tuple):
        raise InvalidInput("rules must be a list of rules (objects or lines of text)")
    if len(value) > RULES_MAX:
        raise InvalidInput(f"a network has at most {RULES_MAX} rules, not {len(value)}")
    clean = []
    for index, rule in enumerate(value):
        checked = check_rule(rule, f"rules[{index}]")
        if checked not in clean:
            clean.append(checked)
    return clean


def parse_text(line, where="rule"):
    """A rule from one line of text: `PROTOCOL[/PORTS] [from SOURCE]`."""
    if not isinstance(line, str) or not line.strip():
        raise InvalidInput(f"{where}: a rule reads {SYNTAX}")
    words = line.split()
    source = None
    if len(words) == 3 and words[1].lower() == "from":
        source = words[2]
    elif len(words) != 1:
        raise InvalidInput(f"{where}: {line.strip()!r:.60} does not read {SYNTAX}")
    protocol, _, ports = words[0].lower().partition("/")
    return check_rule({"protocol": protocol, "ports": ports or None, "source": source}, where)


def as_text(rule):
    """A canonical rule as one line of text (parse_text reads it back)."""
    ports = f"/{rule['ports']}" if rule.get("ports") else ""
    return f"{rule['protocol']}{ports} from {rule['source']}"


def dumps(rules):
    """Rules as the networks row stores them."""
    return json.dumps(rules, separators=(",", ":"))


def loads(text):
    """Rules from the networks row (a row without any lets everything in, as before rules)."""
    return json.loads(text) if text else [dict(rule) for rule in OPEN_RULES]


def for_host(rules, cidr):
    """Rules as the hosts' script takes them: the network's own range written out, ports as
    [low, high]; None when a rule lets in anything from anywhere (no filter at all, so the
    hosts need neither br_netfilter nor connection tracking for it)."""
    if any(rule == {"protocol": "any", "source": "any"} for rule in rules):
        return None
    host_rules = []
    for rule in rules:
        item = {"protocol": rule["protocol"]}
        if rule.get("ports"):
            low, _, high = rule["ports"].partition("-")
            item["ports"] = [int(low), int(high or low)]
        source = cidr if rule.get("source") == "network" else rule.get("source", "any")
        if source != "any":
            item["source"] = source
        if item not in host_rules:
            host_rules.append(item)
    return host_rules
