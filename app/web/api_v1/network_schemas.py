"""The API's network schemas (marshmallow), as app/web/api_v1/schemas.py makes the others: the
name's pattern and the MTU's bounds from the networks service, which checks every field with
its own messages (the API and app.core say the same)."""

from marshmallow import Schema, fields

from ...ipam import DNS_MAX, NETWORK_NAME_RE
from ...net_rules import DEFAULT_RULES, PROTOCOLS, RULES_MAX, SYNTAX, as_text
from ...services.networks import MTU_MAX, MTU_MIN, TYPES
from .schemas import PageArgs

NETWORK_NAME = {"pattern": NETWORK_NAME_RE, "maxLength": 40}


class NetworkRule(Schema):
    """One rule of a network's security group: inbound traffic its VMs' ports let in."""

    protocol = fields.String(required=True, metadata={"enum": list(PROTOCOLS)})
    ports = fields.String(
        metadata={"description": "tcp and udp only: a port or LOW-HIGH (absent: all)"}
    )
    source = fields.String(
        required=True, metadata={"description": "any, network (its own CIDR) or a CIDR"}
    )


def rules_field(**kwargs):
    """A request's rules: objects or lines of text, which the networks service checks (with
    the messages the dashboard and app.core give)."""
    item = {
        "oneOf": [
            {"$ref": "#/components/schemas/NetworkRule"},
            {"type": "string", "description": SYNTAX},
        ]
    }
    return fields.List(
        fields.Raw(metadata=item),
        metadata={"maxItems": RULES_MAX, **kwargs.pop("metadata", {})},
        **kwargs,
    )


class Network(Schema):
    """A network as listNetworks shows it."""

    id = fields.Integer(required=True)
    name = fields.String(required=True, metadata=NETWORK_NAME)
    type = fields.String(required=True, metadata={"enum": list(TYPES)})
    vni = fields.Integer(allow_none=True, metadata={"description": "a vxlan network's VXLAN id"})
    bridge = fields.String(
        allow_none=True, metadata={"description": "the host bridge its NICs plug into"}
    )
    cidr = fields.String(required=True)
    gateway = fields.String(allow_none=True)
    dns = fields.List(fields.String(), metadata={"description": "resolvers the guests are given"})
    range = fields.String(metadata={"description": "FIRST-LAST: the addresses Nube hands out"})
    mtu = fields.Integer(allow_none=True)
    rules = fields.List(
        fields.Nested(NetworkRule), metadata={"description": "its security group, in order"}
    )
    project = fields.String(allow_none=True)
    used = fields.Integer(metadata={"description": "addresses NICs hold"})
    free = fields.Integer(metadata={"description": "addresses left in the range"})
    created_by = fields.String(allow_none=True)
    created_at = fields.String(allow_none=True)


class NetworkAddress(Schema):
    """An address in use on a network: the VM and NIC (index) holding it."""

    ip = fields.String(required=True)
    vm = fields.String(required=True)
    nic = fields.Integer(required=True, metadata={"description": "the NIC's index in the VM"})
    mac = fields.String(required=True)


class NetworkDetail(Network):
    """One network, with the addresses in use on it."""

    addresses = fields.List(fields.Nested(NetworkAddress), required=True)


class NetworkCreate(Schema):
    """addNetwork's input."""

    name = fields.String(required=True, metadata=NETWORK_NAME)
    type = fields.String(metadata={"enum": list(TYPES), "description": "default: vxlan"})
    cidr = fields.String(required=True, metadata={"description": "IPv4, /16 to /29, private"})
    gateway = fields.String(metadata={"description": "an address of the CIDR (none: no route)"})
    dns = fields.Raw(
        metadata={
            "oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}],
            "description": f"up to {DNS_MAX} IPv4 resolvers: a list or comma-separated text",
        }
    )
    range = fields.String(
        metadata={"description": "FIRST-LAST inside the CIDR (default: all of it)"}
    )
    bridge = fields.String(
        metadata={"description": "type bridge only: the hosts' existing bridge (hosts role)"}
    )
    mtu = fields.Integer(
        metadata={"minimum": MTU_MIN, "maximum": MTU_MAX, "description": "default: 1450 (vxlan)"}
    )
    project = fields.String(
        metadata={"description": "default: your only project (members) or default"}
    )
    rules = rules_field(
        metadata={"description": f"default: {', '.join(map(as_text, DEFAULT_RULES))}"}
    )


class NetworkUpdate(Schema):
    """updateNetwork's input: the rules that replace the network's."""

    rules = rules_field(
        required=True,
        metadata={"description": "[] lets in only replies to the VMs' own connections"},
    )


class NetworkListArgs(PageArgs):
    """Query arguments of the network list: a filter and a page (by name, no other sort)."""

    q = fields.String(load_default="", metadata={"description": "the filter language's query"})
