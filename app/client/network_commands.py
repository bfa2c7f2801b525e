"""The network sub-commands: one function each, taking the Session and returning the exit
code (a removal is confirmed first: --yes, or y typed at the prompt); and `--network
NAME[=IP]` of vm create. Rules go as the text lines typed (the controller reads and checks
them) and come back as objects, shown as text again."""

import argparse

from ..net_rules import as_text
from . import inputs, output
from .calls import act, gone, list_items, part, show_item
from .errors import UsageError

NETWORK_COLUMNS = [
    ("name", "NAME"),
    ("type", "TYPE"),
    ("vni", "VNI"),
    ("bridge", "BRIDGE"),
    ("cidr", "CIDR"),
    ("gateway", "GATEWAY"),
    ("used", "USED"),
    ("free", "FREE"),
    ("project", "PROJECT"),
]
CREATE_FIELDS = ("type", "gateway", "range", "bridge", "mtu", "project")


def nic_request(text):
    """One --network NAME[=IP] of vm create: the name, or {network, ip} (argparse type)."""
    name, _, ip = text.partition("=")
    if not name.strip() or ("=" in text and not ip.strip()):
        raise argparse.ArgumentTypeError(f"give NAME or NAME=IP, not {text!r}")
    return {"network": name.strip(), "ip": ip.strip()} if ip else name.strip()


def nics_text(nics):
    """A VM's NICs as lines: network, address and MAC."""
    return [f"{n.get('network')} {n.get('ip') or '-'} {n.get('mac')}" for n in nics or []]


def _readable(network):
    """A network with its rules as lines of text, and its addresses in use as lines: address,
    VM, NIC index and MAC."""
    shown = dict(network)
    if "rules" in network:
        shown["rules"] = [as_text(rule) for rule in network["rules"]] or "none: replies only"
    if "addresses" in network:
        lines = [
            f"{a.get('ip')} {a.get('vm')} nic {a.get('nic')} {a.get('mac')}"
            for a in network["addresses"]
        ]
        shown["addresses"] = lines or "none"
    return shown


def network_list(session):
    """nube network list [-q FILTER]"""
    return list_items(session, "/networks", NETWORK_COLUMNS)


def network_show(session):
    """nube network show NAME: its fields and each address in use."""
    return show_item(session, f"/networks/{part(session.args.name)}", shown=_readable)


def network_create(session):
    """nube network create NAME --cidr C [--type T] [--gateway G] [--dns D]... [...]"""
    args = session.args
    body = {"name": args.name, "cidr": args.cidr}
    body.update({key: getattr(args, key) for key in CREATE_FIELDS if getattr(args, key)})
    if args.dns:
        body["dns"] = [d.strip() for item in args.dns for d in item.split(",") if d.strip()]
    if args.rules:  # none given: the controller's defaults
        body["rules"] = args.rules
    network = session.api().request("POST", "/networks", body) or {}
    session.show(network, lambda out: output.record(_readable(network), out))
    return 0


def network_rules(session):
    """nube network rules NAME (--rule RULE... | --none): replace the network's rules"""
    args = session.args
    if not args.rules and not args.none:
        raise UsageError("give the new rules: --rule RULE (repeatable), or --none for no rules")
    rules = [] if args.none else args.rules
    return act(session, "PATCH", f"/networks/{part(args.name)}", {"rules": rules})


def network_remove(session):
    """nube network remove NAME [--yes] (refused while VMs use it)"""
    name = session.args.name
    inputs.confirm(
        f"Remove network {name}? VMs can no longer be created on it; hosts drop its bridge"
        " once no VM of theirs uses it.",
        session.args.yes,
    )
    return gone(session, f"/networks/{part(name)}", f"network {name} removed")
