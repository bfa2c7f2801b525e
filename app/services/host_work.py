"""What host operations do once a worker runs them."""

from .. import states
from ..addresses import uri_host
from ..db import now, transaction
from ..errors import NotFound, NubeError, OperationFailed
from ..ops.claims import release_host_and_vms
from ..repositories import hosts as hosts_repo
from ..repositories import vms as vms_repo
from . import export_work, host_secrets, migrate_work, network_sync, validate
from .vm_work import force_remove_vm


def _host(ctx, host_id=None):
    """A host row as a dict (the operation's by default), its password decrypted (never logged)."""
    row = hosts_repo.get(ctx.conn, int(ctx.target_id) if host_id is None else host_id)
    if row is None:
        raise NotFound(f"host {ctx.target_name} no longer exists")
    host = dict(row)
    # sealed with the address and user it was given for: never sent to another target
    host["password"], host["password_refused"] = host_secrets.password_for(
        ctx.conn, ctx.adapters.secrets, row
    )
    return host


def _playbook_vars(ctx, host):
    """Extra variables host_add.yaml and host_remove.yaml need."""
    return {
        "share": host["share"],
        "repository": ctx.config["REPOSITORY"],
        "host_mount": ctx.config["HOST_MOUNT"],
        "controller_address": uri_host(ctx.config["CONTROLLER_ADDRESS"]),  # [v6]:/path
        "controller_pubkey": ctx.adapters.public_key() if host.get("password") else "",
        "host_user": host["user"],
    }


def _run_host_play(ctx, host, playbook, **options):
    """Run host_add.yaml or host_remove.yaml on a host with its sudo password; returns facts."""
    if not host.get("password"):
        why = f": {host['password_refused']}" if host.get("password_refused") else ""
        raise OperationFailed(f"the host's sudo password is needed to run {playbook}{why}")
    what = "preparing" if playbook == "host_add.yaml" else "undoing the preparation of"
    ctx.log(f"{what} {host['address']} with {playbook} (share: {host['share']})")
    options.setdefault("cancel", ctx.should_stop)
    return ctx.provisioner.run(
        playbook,
        host=host,
        extravars=_playbook_vars(ctx, host),
        password=host["password"],
        log=ctx.log,
        **options,
    )


def _prepare(ctx, host):
    """Run host_add.yaml (when asked), check libvirt answers, record the host's facts."""
    facts = {}
    if ctx.input.get("prepare", True):
        key = ctx.provisioner.host_key(host["address"])
        if key:
            host_secrets.record_host_key(
                ctx.conn, ctx.adapters.secrets, host["id"], host["address"], key
            )
        facts = _run_host_play(ctx, host, "host_add.yaml", progress=ctx.progress) or {}
        hosts_repo.update(ctx.conn, host["id"], prepared=1)  # from now on removal undoes it
        ctx.check()
    uri = ctx.hypervisor.uri_for(host)
    ctx.log(f"checking libvirt at {uri}")
    info = ctx.hypervisor.host_info(host)
    kvm = bool(facts["kvm"]) if "kvm" in facts else info.kvm
    ctx.log(
        f"libvirt answers: {info.cpus} CPUs, {info.mem} MiB, KVM {'usable' if kvm else 'not usable (TCG)'}"
    )
    _check_network(ctx, host, facts)
    hosts_repo.update(
        ctx.conn,
        host["id"],
        cpus=info.cpus,
        mem=info.mem,
        free_mem=info.free_mem,
        kvm=int(kvm),
        state="ready",
        error=None,
        last_seen=now(),
    )


def _check_network(ctx, host, facts):
    """Refuse a host whose network for VMs (a libvirt network, or bridge:NAME) is missing or
    inactive, naming what it has: better now than at the first VM's start."""
    network = host["network"]
    if network == "none":
        return
    if network.startswith("bridge:"):
        bridge = network.removeprefix("bridge:")
        # host_add.yaml reports the bridges it saw; libvirt lists them only with udev or netcf
        bridges = facts["bridges"] if "bridges" in facts else ctx.hypervisor.bridges(host)
        if bridges is None:
            ctx.log(f"could not list the bridges of {host['name']}: bridge {bridge} not checked")
        elif bridge not in bridges:
            raise OperationFailed(
                f"host {host['name']} has no bridge {bridge}; its bridges: "
                f"{', '.join(bridges) or 'none'}"
            )
        else:
            ctx.log(f"bridge {bridge} is there")
        return
    networks = ctx.hypervisor.networks(host)
    named = ", ".join(
        f"{n} ({'active' if up else 'inactive'})" for n, up in sorted(networks.items())
    )
    if network not in networks:
        raise OperationFailed(
            f"host {host['name']} has no libvirt network {network}; its networks: {named or 'none'}."
            f" {NO_NIC_HINT}"
        )
    if not networks[network]:
        raise OperationFailed(
            f"libvirt network {network} on host {host['name']} is not active (start it with "
            f"`virsh net-start {network}` and `virsh net-autostart {network}`); its networks: {named}."
            f" {NO_NIC_HINT}"
        )
    ctx.log(f"libvirt network {network} is active")


NO_NIC_HINT = "Or set the host's VM network to none: its VMs then get no network card."


def add_host(ctx):
    """Prepare a newly registered host and mark it ready."""
    host = _host(ctx)
    _prepare(ctx, host)
    export_work.refresh_export(ctx, host["share"])
    network_sync.sync_peers(ctx, host["id"])  # the overlays flood to the new host too


def forget_failed_host(ctx, status):
    """A host that never became ready leaves no row behind."""
    ctx.log(f"removing the registration of {ctx.target_name}: it was never ready")
    row = hosts_repo.get(ctx.conn, int(ctx.target_id))
    if row is None:
        return
    ctx.hypervisor.close(dict(row))
    if row["prepared"]:
        # host_add.yaml ran but a later step failed: undo it, so a failed add changes nothing
        try:
            _run_host_play(ctx, _host(ctx), "host_remove.yaml", cancel=None)
        except NubeError as exc:  # reported; the registration still goes
            ctx.error(f"could not undo the preparation: {exc}")
    ctx.provisioner.forget_host_key(row["address"])  # a later add records the key afresh
    hosts_repo.delete(ctx.conn, row["id"])


def reprepare_host(ctx):
    """Apply an address or share change and re-run host_add.yaml."""
    old = _host(ctx)
    change = _checked_change(ctx.input.get("change", {}))
    ctx.hypervisor.close(old)
    hosts_repo.update(ctx.conn, old["id"], state="preparing", **change)
    host = _host(ctx)  # the password given for the new address, if the address changed
    _prepare(ctx, host)
    if host["address"] != old["address"]:
        ctx.provisioner.forget_host_key(old["address"])  # that machine is no longer this host
    export_work.refresh_export(ctx)  # the old address or share may have left the export
    network_sync.sync_peers(ctx)  # its peers' lists, and its own state, name its new address


def _checked_change(change):
    """An operation's stored address/share change checked again as updateHost checks it:
    the row could have been written by anyone who can write the database."""
    validate.require_dict(change, "change")
    validate.refuse_unknown(change, ("address", "share"), "change")
    checked = {}
    if "address" in change:
        checked["address"] = validate.address(change["address"])
    if "share" in change:
        checked["share"] = validate.choice(change["share"], states.SHARE.values, "share")
    return checked


def mark_prepare_failed(ctx, status):
    """A host whose re-preparation failed is in error, with the reason."""
    hosts_repo.update(ctx.conn, int(ctx.target_id), state="error", error=f"re-preparation {status}")


def remove_host_now(ctx, host_id):
    """Remove a host's VMs, undo its preparation, then forget it (ctx.conn is this thread's)."""
    host = _host(ctx, host_id)
    vms = vms_repo.on_host(ctx.conn, host["id"])
    ctx.progress(0, len(vms) + 1)
    for done, vm in enumerate(vms, start=1):
        ctx.check()
        # host_remove.yaml removes its networks at once, not one play per VM
        force_remove_vm(ctx, dict(vm), host, sync_networks=False)
        ctx.progress(done, len(vms) + 1)
    if host["prepared"]:
        _run_host_play(ctx, host, "host_remove.yaml")
    else:
        ctx.log(f"{host['name']} was registered without preparation: host left as it is")
    ctx.hypervisor.close(host)
    ctx.provisioner.forget_host_key(host["address"])
    with transaction(ctx.conn):
        hosts_repo.delete(ctx.conn, host["id"])
    ctx.log(f"host {host['name']} removed")
    network_sync.sync_peers(ctx)  # the others' overlays stop flooding to it


def remove_host(ctx):
    """Remove the host's VMs (or, with drain, move them away first: then a VM that stays
    stops the removal), undo the preparation, then forget the host."""
    host = _host(ctx)
    if ctx.input.get("drain"):
        result = migrate_work.drain(ctx, host)  # the removal's claim holds their tasks
        if result["stayed"]:
            stayed = "; ".join(f"{s['id']}: {s['reason']}" for s in result["stayed"])
            raise OperationFailed(
                f"{len(result['stayed'])} VM(s) could not leave {host['name']}, which stays"
                f" with them: {stayed}"
            )
    remove_host_now(ctx, int(ctx.target_id))
    export_work.refresh_export(ctx, host["share"])


def keep_failed_removal(ctx, status):
    """A host that could not be removed stays registered, in error, with its VMs released."""
    release_host_and_vms(ctx.conn, int(ctx.target_id), ctx.id, f"removal {status}")
