"""Security group rules: app/net_rules.py's checks and forms, and plays/files/nube_rules.py's
tables (their text; tests/integration/test_host_rules.py runs them on a real kernel)."""

import importlib.util
import ipaddress
import sys
from pathlib import Path

import pytest

from app import net_rules
from app.errors import InvalidInput

FILES = Path(__file__).resolve().parents[2] / "plays" / "files"


def _load():
    """The hosts' module (it lives with the plays, outside any package)."""
    spec = importlib.util.spec_from_file_location("nube_rules", FILES / "nube_rules.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("nube_rules", module)
    spec.loader.exec_module(module)
    return module


nr = _load()


def test_defaults_and_canonical_forms():
    assert net_rules.check_rules(None) == [
        {"protocol": "any", "source": "network"},
        {"protocol": "tcp", "ports": "22", "source": "any"},
    ]
    assert net_rules.check_rules([]) == []
    clean = net_rules.check_rules(
        [
            {"protocol": "udp", "ports": "53", "source": "10.0.0.0/8"},
            "tcp/8000-8090 from 192.168.1.0/24",
            "TCP/22",
            {"protocol": "tcp", "ports": 22},  # the same as the line above: kept once
            "icmp from network",
            {"source": "2001:db8::/32"},
        ]
    )
    assert clean == [
        {"protocol": "udp", "ports": "53", "source": "10.0.0.0/8"},
        {"protocol": "tcp", "ports": "8000-8090", "source": "192.168.1.0/24"},
        {"protocol": "tcp", "ports": "22", "source": "any"},
        {"protocol": "icmp", "source": "network"},
        {"protocol": "any", "source": "2001:db8::/32"},
    ]
    assert [net_rules.as_text(rule) for rule in clean[:2]] == [
        "udp/53 from 10.0.0.0/8",
        "tcp/8000-8090 from 192.168.1.0/24",
    ]
    for rule in clean:
        assert net_rules.parse_text(net_rules.as_text(rule)) == rule
    assert net_rules.check_rules("tcp/22\n\n icmp from network \n") == [
        {"protocol": "tcp", "ports": "22", "source": "any"},
        {"protocol": "icmp", "source": "network"},
    ]


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ("nope", "protocol must be one of tcp, udp, icmp, any"),
        (["tcp/0"], "ports must be from 1 to 65535"),
        (["tcp/90-80"], "low to high"),
        (["tcp/http"], "ports must be a port or a range"),
        (["icmp/8"], "ports are for tcp and udp rules"),
        ([{"protocol": "any", "ports": "22"}], "ports are for tcp and udp rules"),
        (["tcp/22 from 10.0.0.1/8"], "has host bits set"),
        (["tcp/22 from fe80::%eth0/128"], "only digits, dots, colons and /PREFIX"),
        ([{"source": 'fe80::%x\ninclude "shadow"\n/128'}], "only digits, dots, colons"),
        (["tcp/22-"], "ports must be a port or a range"),
        (["tcp/\u00b2"], "ports must be a port or a range"),
        (["tcp/22 from somewhere"], "source must be any, network or a CIDR"),
        (["tcp/22 to any"], "does not read PROTOCOL"),
        ([{"protocol": "tcp", "port": 22}], "unknown key(s) port"),
        ([{"protocol": "tcp", "ports": True}], "ports must be a port or a range"),
        ([7], "must be an object"),
        ({"protocol": "tcp"}, "rules must be a list"),
        (["any"] * (net_rules.RULES_MAX + 1), f"at most {net_rules.RULES_MAX} rules"),
    ],
)
def test_bad_rules_are_refused_with_the_reason(rules, message):
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        net_rules.check_rules(rules)


def test_rules_for_the_hosts_name_the_network_and_ranges():
    rules = net_rules.check_rules(None) + [{"protocol": "udp", "ports": "5000-5010"}]
    assert net_rules.for_host(rules, "10.20.0.0/24") == [
        {"protocol": "any", "source": "10.20.0.0/24"},
        {"protocol": "tcp", "ports": [22, 22]},
        {"protocol": "udp", "ports": [5000, 5010]},
    ]
    # a row written before rules existed lets everything in, as it did: no filter at all
    assert net_rules.loads(None) == [{"protocol": "any", "source": "any"}]
    assert net_rules.for_host(net_rules.loads(None), "10.20.0.0/24") is None


PORT = {"tap": "nt12", "mac": "52:54:0a:0b:0c:0d", "ip": "10.20.0.5"}


def _filters(rules, bridge="nbr100", zone=7, ports=(PORT,)):
    """One network's filter as nube_networks.py parses it."""
    rules = None if rules is None else nr.parse_rules(rules, "n")
    guarded = list(ports) if rules is not None else []
    return [
        {"bridge": bridge, "zone": zone, "rules": rules, "ports": list(ports), "guarded": guarded}
    ]


def test_the_hosts_tables_follow_the_rules():
    rules = [
        {"protocol": "any", "source": "10.20.0.0/24"},
        {"protocol": "tcp", "ports": [22, 22]},
        {"protocol": "udp", "ports": [5000, 5010], "source": "2001:db8::/32"},
        {"protocol": "icmp"},
    ]
    lan = {"bridge": "br0", "zone": None, "rules": None, "ports": [], "guarded": []}
    want = nr.wanted(_filters(rules) + [lan])
    ports, _ = want["bridge"]
    inet, digest = want["inet"]
    # each VM port sends only as its NIC; one the state does not name sends nothing
    assert 'iifname "nt*" jump from_port' in ports
    assert 'elements = { "nt12" . 52:54:0a:0b:0c:0d }' in ports
    assert 'elements = { "nt12" . 52:54:0a:0b:0c:0d . 10.20.0.5 }' in ports
    assert "iifname . ether saddr != @nic_macs counter drop" in ports
    assert "ether type ip iifname . ether saddr . ip saddr != @nic_addresses counter drop" in ports
    # a guarded port (its network has rules) sends no IPv6 and receives none
    assert 'set guarded { type ifname; elements = { "nt12" }; }' in ports
    assert "    iifname != @guarded return\n    ether type ip6 counter drop" in ports
    assert "oifname @guarded ether type ip6 counter drop" in ports
    assert "ether type != { ip, ip6, arp, 0x8035 } counter drop" in ports
    assert "    meta mark set 0x4e75be01" in ports
    assert 'oifname "nt*" meta mark set 0x4e75be02' in ports
    # a VLAN-tagged or PPPoE frame would pass br_netfilter unseen: none reaches a VM's port
    assert 'oifname "nt*" ether type != { ip, ip6, arp, 0x8035 } counter drop' in ports
    assert "type filter hook forward priority -200" in ports
    assert "meta mark 0x4e75be01 meta nfproto ipv4 ct state new ct mark set 0x4e75be01" in inet
    assert "hook prerouting priority -450" in inet  # zones before defragmentation
    assert f'comment "nube {digest}"' in inet
    assert 'iifname "nbr100" ct zone set 7' in inet
    assert "br0" not in inet.split("chain zones")[1].split("chain ports")[0]  # no zone: the LAN's
    assert 'oifname vmap { "nbr100" : jump net0_nbr100, "br0" : accept }' in inet
    assert "meta mark != 0x4e75be02 return" in inet
    chain = inet.split("chain net0_nbr100 {")[1]
    lines = [line.strip() for line in chain.split("\n  }\n")[0].splitlines() if line.strip()]
    # replies pass only to connections a VM's port opened: one forged to look like a reply
    # (its first packet's source the VM's own address) is not
    assert lines[0] == "ct direction reply ct mark 0x4e75be01 accept"
    assert "ct state established,related accept" not in inet
    assert "ip saddr 10.20.0.0/24 accept" in lines
    assert "tcp dport 22 accept" in lines
    assert "ip6 saddr 2001:db8::/32 udp dport 5000-5010 accept" in lines
    assert "meta l4proto { icmp, ipv6-icmp } accept" in lines
    assert lines[-1] == "counter drop"


def test_the_tables_are_written_only_when_they_differ():
    want = nr.wanted(_filters([{"protocol": "tcp", "ports": [22, 22]}]))
    absent = {"bridge": None, "inet": None}
    steps = nr.steps(want, absent, keep=False)
    assert [step[0] for step in steps] == ["nft", "nft"]
    assert steps[1][1].startswith("table inet nube_rules\ndelete table inet nube_rules\n")
    same = {"bridge": want["bridge"][1], "inet": want["inet"][1]}
    assert nr.steps(want, same, keep=False) == []
    assert nr.steps(want, {**same, "inet": ""}, keep=False) == [["nft", steps[1][1]]]
    gone = [["nft", "delete", "table", "bridge", "nube_ports"],
            ["nft", "delete", "table", "inet", "nube_rules"]]  # fmt: skip
    assert nr.steps(None, same, keep=False) == gone
    assert nr.steps(None, same, keep=True) == []  # a VM is still plugged into a kept bridge
    assert nr.steps(None, absent, keep=False) == []
    # networks without rules want the ports' table only; without ports either, none
    open_network = nr.wanted(_filters(None))
    assert (
        open_network["inet"] is None and "set guarded { type ifname; }" in open_network["bridge"][0]
    )  # an open network's port: its MAC only
    assert nr.steps(open_network, same, keep=False)[1] == gone[1]
    assert nr.wanted(_filters(None, ports=())) is None


def test_bridged_traffic_of_the_bridges_with_rules_is_handed_to_the_inet_hooks():
    filters = _filters([]) + [
        {"bridge": "br0", "zone": None, "rules": None, "ports": [], "guarded": []}
    ]
    on = {"linkinfo": {"info_data": {"nf_call_iptables": 1, "nf_call_ip6tables": 1}}}
    off = {"linkinfo": {"info_data": {"nf_call_iptables": 1, "nf_call_ip6tables": 0}}}
    setting = ["type", "bridge", "nf_call_iptables", "1", "nf_call_ip6tables", "1"]
    assert nr.br_netfilter_steps(filters, {"nbr100": on}, set(), True) == []
    assert nr.br_netfilter_steps(filters, {"nbr100": off}, set(), True) == [
        ["ip", "link", "set", "dev", "nbr100", *setting]
    ]
    # a bridge made in this run gets it once made; a module not loaded is loaded first
    # loaded by Nube: on for its bridges only, not for the host's others
    assert nr.br_netfilter_steps(filters, {}, {"nbr100"}, False) == [
        ["modprobe", "br_netfilter"],
        ["sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=0"],
        ["sysctl", "-q", "-w", "net.bridge.bridge-nf-call-ip6tables=0"],
        ["ip", "link", "set", "dev", "nbr100", *setting],
    ]
    # br0 has no rules: the operator's bridge is left as it is
    assert nr.br_netfilter_steps(filters[1:], {}, set(), False) == []


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"protocol": "gre"}, "protocol: must be one of"),
        ({"protocol": "icmp", "ports": [1, 1]}, "only tcp and udp rules have ports"),
        ({"protocol": "tcp", "ports": [22]}, "must be [low, high]"),
        ({"protocol": "tcp", "ports": [0, 22]}, "must be [low, high]"),
        ({"protocol": "tcp", "source": "10.0.0.1/8"}, "is not a network"),
        ({"protocol": "tcp", "source": "10.0.0.0/8; flush ruleset"}, "is not a network"),
        ({"protocol": "tcp", "source": "fe80::%x/128"}, "is not a network"),
        ({"protocol": "tcp", "source": 10}, "is not a network"),
        ({"protocol": "tcp", "dport": 22}, "protocol, ports and source only"),
    ],
)
def test_the_hosts_module_refuses_bad_rules(rule, message):
    with pytest.raises(nr.BadRules, match=message.replace("[", r"\[").replace("]", r"\]")):
        nr.parse_rules([rule], "networks[0]")
    assert nr.parse_zone(None, "n") is None
    with pytest.raises(nr.BadRules, match="zone: must be an integer from 1 to 65535"):
        nr.parse_zone(65536, "n")


@pytest.mark.parametrize(
    ("port", "message"),
    [
        ({**PORT, "tap": "eth0"}, "is not a VM's tap"),
        ({**PORT, "tap": 'nt1" . 00:00:00:00:00:00'}, "is not a VM's tap"),
        ({**PORT, "mac": "53:54:00:00:00:01"}, "is not a unicast MAC"),
        ({**PORT, "mac": "52:54:00:00:00"}, "is not a unicast MAC"),
        ({**PORT, "ip": "10.20.0.5/24"}, "is not an IPv4 address"),
        ({**PORT, "ip": "fe80::1"}, "is not an IPv4 address"),
        ({"tap": "nt1", "mac": PORT["mac"]}, "with tap, mac and ip"),
    ],
)
def test_the_hosts_module_refuses_bad_ports(port, message):
    with pytest.raises(nr.BadRules, match=message):
        nr.parse_ports([port], "networks[0]")


def test_sources_are_written_as_networks():
    rule = nr.parse_rule({"protocol": "any", "source": "10.0.0.0/8"}, "r")
    assert rule["source"] == ipaddress.ip_network("10.0.0.0/8")
