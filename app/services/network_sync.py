"""Keep each host's virtual networks in step with the VMs placed on it.

A host has a network while any VM placed there has a NIC on it: its VXLAN device and bridge
(plays/host_networks.yaml, idempotent) are made before such a VM is defined, started or moved
in, and removed once the last one is gone. Each overlay floods to every other host that can
carry VMs (their data addresses), so a VM keeps reaching its peers wherever placement or a
migration puts them; when hosts come and go, every host that has networks gets its peer list
again. The state also names each network's rules and its ports on the host (each VM NIC's
tap, MAC and address, the only ones it may send as), so a VM on a network placed on or gone
from a host is a play there too. The state last applied to a host is recorded: an unchanged
state (a VM stopped or started again) costs no play, and a host nothing was ever given costs
none either.
"""

import ipaddress
import json

from .. import net_rules
from ..db import transaction
from ..errors import HostUnreachable, NubeError, OperationFailed
from ..ipam import tap_name
from ..repositories import hosts as hosts_repo
from ..repositories import networks as networks_repo
from ..states import HOST_NETWORK_PEERS
from . import host_secrets

PLAYBOOK = "host_networks.yaml"
PEER_STATES = HOST_NETWORK_PEERS
ZONES = 65535  # conntrack zones 1..65535 (0 is the host's own)
RESYNCS = 3  # plays one sync may run while other operations keep changing the state


def _ip(text):
    """An address's ipaddress value, or None for a host name."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _peers(conn, host, local):
    """The data addresses of every other host that may carry VMs, sorted: IP addresses of
    local's family only (the host script refuses any other peer, which would stop this host's
    networks; a host named by DNS or on the other family carries none itself)."""
    found = set()
    for other in hosts_repo.search(conn):
        if other["id"] != host["id"] and other["state"] in PEER_STATES:
            address = _ip(other["data_address"] or other["address"])
            if address is not None and local is not None and address.version == local.version:
                found.add(str(address))
    return sorted(found)


def desired_state(conn, host):
    """What the host must have ({local, networks}) for the VMs placed on it or being moved to
    it, and the ids of those networks. Each network lists its ports there, the VMs' NICs
    ({tap, mac, ip}): each may send only as itself."""
    nics = networks_repo.nics_on_host(conn, host["id"])
    rows = {nic["network_id"]: nic for nic in nics}  # each NIC's row has its network's fields
    local = host["data_address"] or host["address"]
    local_ip = _ip(local)  # None for a host name: no local address, and no VXLAN
    peers = _peers(conn, host, local_ip)
    networks = []
    for network_id in sorted(rows):
        network = _network(rows[network_id], host, local, local_ip, peers)
        network["ports"] = [
            {"tap": tap_name(nic["id"]), "mac": nic["mac"], "ip": nic["ip"]}
            for nic in nics
            if nic["network_id"] == network_id
        ]
        networks.append(network)
    # a host name is no local address (the script refuses one even for bridge networks only)
    return {"local": None if local_ip is None else str(local_ip), "networks": networks}, set(rows)


def _network(row, host, local, local_ip, peers):
    """One network as the host's state names it (row: a NIC's, with its network's fields):
    its devices, and its rules when it has any."""
    if row["type"] == "vxlan":
        if local_ip is None:
            raise OperationFailed(
                f"host {host['name']} cannot carry VXLAN network {row['name']}: its data"
                f" address {local} is not an IP address (give it one)"
            )
        network = {"type": "vxlan", "vni": row["vni"], "peers": peers, "mtu": row["mtu"]}
        network["zone"] = 1 + (row["network_id"] - 1) % ZONES  # its own connection tracking
    else:
        network = {"type": "bridge", "bridge": row["bridge"]}
    rules = net_rules.for_host(net_rules.loads(row["rules"]), row["cidr"])
    if rules is not None:  # none: the network lets everything in
        network["rules"] = rules
    return network


def sync_host(ctx, host, force=False, cancellable=True):
    """Apply the host's network state when it differs from the one last applied (or always,
    when forced); returns whether a play ran. OperationFailed when the play fails.

    Another operation may sync the same host meanwhile with a state it read earlier (the
    host's lock only orders the runs): once a play is done, the state is read again and, when
    it changed, applied again, so the last run on the host is never an older state."""
    ran = False
    for _ in range(RESYNCS):
        if not _sync_once(ctx, host, force, cancellable):
            return ran
        ran, force = True, False
    return ran


def _sync_once(ctx, host, force, cancellable):
    """One sync: whether a play ran."""
    conn = ctx.conn
    state, network_ids = desired_state(conn, host)
    text = json.dumps(state, sort_keys=True)
    applied = networks_repo.applied_state(conn, host["id"])
    if not force and text == applied:
        return False
    if not network_ids and not networks_repo.given(conn, host["id"]) and applied is None:
        return False  # never given a network, none wanted: nothing to undo
    row = hosts_repo.get(conn, host["id"])
    password, refused = host_secrets.password_for(conn, ctx.adapters.secrets, row)
    if not password:
        why = f": {refused}" if refused else ""
        raise OperationFailed(
            f"the sudo password of {host['name']} is needed to set up networks{why}"
        )
    ctx.log(f"networks on {host['name']}: {_describe(state['networks'])}")
    try:
        ctx.provisioner.run(
            PLAYBOOK,
            host={**dict(row), "password": password},
            extravars={"nube_networks": state},
            password=password,
            log=ctx.log,
            # a clean-up after a canceled operation runs although it is canceled
            cancel=ctx.should_stop if cancellable else None,
        )
    except (OperationFailed, HostUnreachable):
        networks_repo.forget_applied(conn, host["id"])
        raise
    with transaction(conn):  # two moves onto one host (a drain) record at once
        networks_repo.record_given(conn, host["id"], network_ids, text)
    return True


def _describe(networks):
    """A host's networks as the log counts them: counts only, since the host carries other
    projects' networks too, and a member may read the log of its own operation."""
    if not networks:
        return "none"
    vxlans = sum(1 for network in networks if network["type"] == "vxlan")
    return f"{vxlans} VXLAN, {len(networks) - vxlans} bridge"


def sync_quietly(ctx, host, cancellable=True):
    """Sync a host whose VMs left or changed, logging a failure instead of raising it: the
    work that called it is done, and the next sync applies the state again."""
    try:
        sync_host(ctx, host, cancellable=cancellable)
    except NubeError as error:
        ctx.error(f"could not update the networks of {host['name']}: {error}")


def sync_peers(ctx, changed_host_id=None):
    """Give every host that has networks its peer list again (a host came, went or moved its
    data address); failures are logged and retried by the next sync."""
    for host_id in networks_repo.hosts_with_networks(ctx.conn):
        row = hosts_repo.get(ctx.conn, host_id)
        if row is None or host_id == changed_host_id or row["state"] not in PEER_STATES:
            continue
        sync_quietly(ctx, dict(row))


def on_bridge_network(conn, vm_id):
    """Whether a VM has a NIC on a bridge network: the host's bridge outlives a reboot, its
    rules do not, so nothing fails to say they are gone (syncs for it are forced)."""
    return any(nic["type"] == "bridge" for nic in networks_repo.nics_of(conn, vm_id))


def vm_network_ids(conn, vm_id):
    """The ids of the networks a VM has NICs on."""
    return {nic["network_id"] for nic in networks_repo.nics_of(conn, vm_id)}
