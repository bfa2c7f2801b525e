"""The work of a network's operations: its rules brought to every host that carries it."""

from ..errors import HostUnreachable, OperationFailed
from ..repositories import hosts as hosts_repo
from ..repositories import networks as networks_repo
from . import network_sync


def resync_after_address_change(ctx):
    """A host's data address changed: every host that has networks gets its state again (its
    peers' lists name the new address; the host's own VXLAN devices take it as local)."""
    ctx.log(f"{ctx.target_name} has a new data address: its peers' networks follow it")
    network_sync.sync_peers(ctx)


def apply_rules(ctx):
    """Give every host that carries the network its state again, with the network's rules as
    the row now has them. A host that cannot be reached keeps its old rules until its next
    sync (which applies the new ones): the operation fails naming it."""
    network_id = int(ctx.target_id)
    if networks_repo.get_by_id(ctx.conn, network_id) is None:
        raise OperationFailed(f"network {ctx.target_name} was removed meanwhile")
    host_ids = networks_repo.hosts_of(ctx.conn, network_id)
    if not host_ids:
        ctx.log(f"no host carries {ctx.target_name} now: its VMs' hosts get the rules with it")
    failed = []
    for host_id in host_ids:
        ctx.check()
        row = hosts_repo.get(ctx.conn, host_id)
        if row is None or row["state"] not in network_sync.PEER_STATES:
            continue  # its VMs come back through a sync, which brings the rules
        try:
            # forced: the same rules given again repair a host that lost them (a reboot)
            network_sync.sync_host(ctx, dict(row), force=True)
        except (OperationFailed, HostUnreachable) as error:
            ctx.error(f"{row['name']}: {error}")
            failed.append(row["name"])
    if failed:
        raise OperationFailed(
            f"the rules of {ctx.target_name} could not be applied on {', '.join(failed)}: they"
            " keep the earlier rules until their next network sync"
        )
    ctx.log(f"rules of {ctx.target_name} applied on {len(host_ids)} host(s)")
