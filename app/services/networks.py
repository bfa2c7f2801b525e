"""Virtual network use cases: define networks, hand their addresses to VMs' NICs, remove them.

A network belongs to a project; a VM's NICs are on networks of its own project. A `vxlan`
network is an overlay Nube makes on the hosts that carry its VMs (network_sync.py); a
`bridge` network names a bridge the hosts already have (a LAN), so only roles that manage
hosts may define one. Addresses are allocated in the VM's own insert transaction (under the
write lock, and unique by constraint), so two VMs created at once never share one.
"""

import ipaddress
import re

from .. import net_rules
from ..db import transaction
from ..errors import Conflict, InvalidInput, NotFound
from ..ipam import (
    NETWORK_NAME_RE,
    bridge_for,
    check_address_in,
    check_cidr,
    check_dns,
    free_count,
    next_free,
    nic_mac,
    number,
    pool,
    text,
)
from ..ops import kinds
from ..ops.claims import Target
from ..ops.launch import launch
from ..ops.request import record
from ..repositories import networks as networks_repo
from . import access, projects, redaction, validate
from .common import audit, db

ADD_FIELDS = (
    "name",
    "type",
    "cidr",
    "gateway",
    "dns",
    "range",
    "bridge",
    "mtu",
    "project",
    "rules",
)
UPDATE_FIELDS = ("rules",)  # a network's one field that changes after it is made
TYPES = ("vxlan", "bridge")
VXLAN_MTU = 1450  # 1500 on the hosts' network less VXLAN's 50 bytes of headers
MTU_MIN, MTU_MAX = 576, 9000
NICS_MAX = 8
_NAME = re.compile(NETWORK_NAME_RE)
_BRIDGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")  # a Linux interface name
_MANAGED_BRIDGE = re.compile(r"^(nbr|nvx)\d+$")  # the names Nube gives its own devices


def public(row, shown=None):
    """The contract's view of a network row (its maker's name as the viewer may read it; a
    list passes its one redactor)."""
    shown = shown or redaction.for_viewer()
    free = free_count(row["pool_first"], row["pool_last"], row["gateway"], row["used"])
    return {
        "id": row["id"],
        "name": row["name"],
        "type": row["type"],
        "vni": row["vni"],
        "bridge": bridge_for(row["type"], row["vni"], row["bridge"]),
        "cidr": row["cidr"],
        "gateway": row["gateway"],
        "dns": [d for d in (row["dns"] or "").split(",") if d],
        "range": f"{text(row['pool_first'])}-{text(row['pool_last'])}",
        "mtu": row["mtu"],
        "rules": net_rules.loads(row["rules"]),
        "project": row["project"],
        "used": row["used"],
        "free": free,
        "created_by": shown.user(row["created_by"]),
        "created_at": row["created_at"],
    }


def check_name(value):
    """A network name: letters, digits, `_.-`, at most 40 characters."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise InvalidInput(
            f"network name must be 1-40 letters, digits, '_', '.' or '-' (starting with a letter"
            f" or digit), not {value!r:.60}"
        )
    return value


def _check_range(network, value, gateway):
    """The pool from "first-last" text (or the whole CIDR when absent)."""
    if value in (None, ""):
        return pool(network, gateway)
    if not isinstance(value, str) or value.count("-") != 1:
        raise InvalidInput(f"range must be two addresses as FIRST-LAST, not {value!r:.60}")
    first, last = value.split("-")
    return pool(network, gateway, first.strip(), last.strip())


def _check_type_fields(data, kind, net):
    """The fields only one type has: a bridge's name; a VXLAN overlay's MTU."""
    bridge = validate.text(data, "bridge", required=False)
    if kind == "bridge":
        if bridge is None or not _BRIDGE.fullmatch(bridge) or _MANAGED_BRIDGE.fullmatch(bridge):
            raise InvalidInput(
                f"a bridge network names the hosts' existing bridge (e.g. br0), not {bridge!r:.40}"
            )
        access.require("hosts")  # it puts VMs on the hosts' own LAN
        net["bridge"] = bridge
    elif bridge is not None:
        raise InvalidInput("bridge is for networks of type bridge: a vxlan network makes its own")
    default = VXLAN_MTU if kind == "vxlan" else None
    net["mtu"] = validate.integer(
        data, "mtu", required=False, default=default, minimum=MTU_MIN, maximum=MTU_MAX
    )


def check_new(data):
    """Validate addNetwork input; returns the clean fields."""
    validate.require_dict(data, "network")
    validate.refuse_unknown(data, ADD_FIELDS, "network")
    kind = validate.text(data, "type", required=False, default="vxlan")
    validate.choice(kind, TYPES, "type")
    cidr = check_cidr(data.get("cidr"))
    gateway = data.get("gateway")
    gateway = None if gateway in (None, "") else check_address_in(cidr, gateway, "gateway")
    first, last = _check_range(cidr, data.get("range"), gateway)
    net = {
        "name": check_name(validate.text(data, "name")),
        "type": kind,
        "cidr": str(cidr),
        "gateway": None if gateway is None else str(gateway),
        "dns": check_dns(data.get("dns")),
        "pool_first": first,
        "pool_last": last,
        "project": validate.text(data, "project", required=False),
        "rules": net_rules.dumps(net_rules.check_rules(data.get("rules"))),
    }
    _check_type_fields(data, kind, net)
    return net


def add(data, actor):
    """Define a network in a project (a VXLAN one gets the next free VNI); returns it."""
    net = check_new(data)
    conn = db()
    with transaction(conn):
        if networks_repo.get(conn, net["name"]):
            raise Conflict(f"a network named {net['name']} already exists")
        project = projects.for_new_resource(conn, net.pop("project"))
        if net["type"] == "vxlan":
            net["vni"] = networks_repo.next_vni(conn)
        networks_repo.insert(conn, net, project["id"], actor)
        detail = f"{net['type']} {net['cidr']}" + (f" VNI {net['vni']}" if net.get("vni") else "")
        audit(conn, actor, "network.create", f"network:{net['name']}", detail)
    return get(net["name"])


def _row(name):
    """A network row the viewer may see, by name (or id); NotFound otherwise."""
    if isinstance(name, int) and not isinstance(name, bool):
        row = networks_repo.get_by_id(db(), name)
    elif isinstance(name, str):
        row = networks_repo.get(db(), name)
    else:
        raise InvalidInput(f"network must be a name, not {name!r:.40}")
    if row is None or not access.current().sees(row["project_id"]):
        raise NotFound(f"network {name} not found")
    return row


def get(name):
    """A network the viewer may see, with its counts."""
    return public(_row(name))


def search(query=""):
    """Networks the viewer may see, matching a filter expression."""
    if not isinstance(query or "", str):
        raise InvalidInput("query must be text")
    rows = networks_repo.search(db(), query or "", access.visible_projects())
    shown = redaction.for_viewer()
    return [public(row, shown) for row in rows]


def addresses(name):
    """The addresses in use on a network: [{ip, vm, nic, mac}], by address."""
    row = _row(name)
    return [
        {"ip": nic["ip"], "vm": nic["vm"], "nic": nic["idx"], "mac": nic["mac"]}
        for nic in networks_repo.nics_on(db(), row["id"])
    ]


def may_set_rules(network):
    """Whether the viewer may change a network's rules: a bridge network is the hosts' own LAN,
    whose filter is the operators'."""
    return network["type"] != "bridge" or access.current().may("hosts")


def set_rules(name, rules, actor, wait):
    """Replace a network's security group and bring it to every host that carries the
    network; returns the operation id. The row holds the new rules from the request on (a VM
    started meanwhile gets them); the operation reports the hosts it could not reach."""
    row = _row(name)
    if not may_set_rules(row):
        access.require("hosts")  # refused, saying what the role may not do
    if rules is None:
        raise InvalidInput(
            "rules must be given: a list of rules (an empty one lets in replies only)"
        )
    clean = net_rules.check_rules(rules)
    conn = db()
    with transaction(conn):
        now = networks_repo.get_by_id(conn, row["id"])
        if now is None or (now["name"], now["type"]) != (row["name"], row["type"]):
            # removed, and its id given to another network, since the check above
            raise Conflict(f"network {row['name']} changed during the request: try again")
        target = Target("network", row["id"], row["name"])
        op_id = record(conn, kinds.NETWORK_RULES, target, actor, {"rules": clean})
        networks_repo.set_rules(conn, row["id"], net_rules.dumps(clean))
    return launch(op_id, wait)


def update(name, data, actor, wait):
    """Change a network as {"rules": [...]} asks (updateNetwork, PATCH): the rules replaced
    through set_rules; returns the operation id."""
    validate.require_dict(data, "network change")
    validate.refuse_unknown(data, UPDATE_FIELDS, "network change")
    if "rules" not in data:
        raise InvalidInput("rules is required: the network's new rules (a list, maybe empty)")
    return set_rules(name, data["rules"], actor, wait)


def remove(name, actor):
    """Remove a network no VM uses (refused, naming them, while any does); a bridge network
    only by those who may define one."""
    row = _row(name)
    if row["type"] == "bridge":
        access.require("hosts")  # the project's way onto the hosts' LAN, which members get
    conn = db()
    with transaction(conn):
        users = sorted({nic["vm"] for nic in networks_repo.nics_on(conn, row["id"])})
        if users:
            shown = ", ".join(users[:5]) + (f" and {len(users) - 5} more" if len(users) > 5 else "")
            raise Conflict(
                f"network {row['name']} is in use by {len(users)} VM"
                f"{'s' if len(users) != 1 else ''} ({shown}): remove them first"
            )
        networks_repo.delete(conn, row["id"])
        audit(conn, actor, "network.remove", f"network:{row['name']}")


def check_nic_requests(value):
    """addVm's `networks`: a list of names or {"network", "ip"?}; returns [(name, ip or None)]."""
    if value in (None, []):
        return []
    if not isinstance(value, list):
        raise InvalidInput("networks must be a list of network names or {network, ip} objects")
    if len(value) > NICS_MAX:
        raise InvalidInput(f"a VM has at most {NICS_MAX} NICs, not {len(value)}")
    wanted = []
    for index, item in enumerate(value):
        if isinstance(item, str):
            item = {"network": item}
        if not isinstance(item, dict) or set(item) - {"network", "ip"}:
            raise InvalidInput(
                f"networks[{index}] must be a network name or {{network, ip}}, not {item!r:.60}"
            )
        ip = item.get("ip")
        wanted.append((check_name(item.get("network")), None if ip in (None, "") else str(ip)))
    return wanted


def allocate_nics(conn, vm_id, vm_uuid, project, requests):
    """Inside the VM's insert transaction: give it one NIC per request, each with an address
    (the one asked for, or the lowest free) and a MAC; returns [{network, ip, mac}]."""
    nics = []
    for index, (name, asked) in enumerate(requests):
        row = networks_repo.get(conn, name)
        if row is None or row["project_id"] != project["id"]:
            raise NotFound(f"network {name} not found in project {project['name']}")
        taken = networks_repo.taken_numbers(conn, row["id"])
        address = _address_for(row, asked, taken)
        mac = _unique_mac(conn, vm_uuid, index)
        networks_repo.insert_nic(conn, vm_id, index, row["id"], address, text(address), mac)
        nics.append({"network": name, "ip": text(address), "mac": mac})
    return nics


def _address_for(row, asked, taken):
    """The address a NIC gets: the one asked for (in the pool, not the gateway, free) or the
    lowest free one; a full network is refused with its size."""
    if asked is None:
        found = next_free(row["pool_first"], row["pool_last"], row["gateway"], taken)
        if found is None:
            size = free_count(row["pool_first"], row["pool_last"], row["gateway"], 0)
            raise Conflict(
                f"network {row['name']} has no free address: all {size} addresses of its range"
                f" {text(row['pool_first'])}-{text(row['pool_last'])} are in use"
            )
        return found
    address = check_address_in(ipaddress.ip_network(row["cidr"]), asked, f"ip on {row['name']}")
    wanted = int(address)
    if not row["pool_first"] <= wanted <= row["pool_last"]:
        raise InvalidInput(
            f"ip {address} is outside the range of network {row['name']}"
            f" ({text(row['pool_first'])}-{text(row['pool_last'])})"
        )
    if row["gateway"] and wanted == number(row["gateway"]):
        raise InvalidInput(f"ip {address} is network {row['name']}'s gateway")
    if wanted in taken:
        raise Conflict(f"ip {address} is already in use on network {row['name']}")
    return wanted


def _unique_mac(conn, vm_uuid, index):
    """The NIC's derived MAC, or the next derivation in the rare case another NIC has it."""
    for attempt in range(16):
        mac = nic_mac(vm_uuid, index, attempt)
        if not networks_repo.mac_taken(conn, mac):
            return mac
    raise Conflict("no free MAC address could be derived for this NIC")  # 16 collisions


def nics(vm_id):
    """A VM's NICs as its page and the API show them: [{network, ip, mac}]."""
    return [
        {"network": nic["network"], "ip": nic["ip"], "mac": nic["mac"]}
        for nic in networks_repo.nics_of(db(), vm_id)
    ]
