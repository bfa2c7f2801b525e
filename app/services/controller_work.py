"""What controller operations do: iaas_init.yaml, the NFS export, and the big teardown."""

from concurrent.futures import ThreadPoolExecutor

from ..db import connect, transaction
from ..errors import NubeError, OperationFailed
from ..ops.registry import operation
from ..repositories import hosts as hosts_repo
from ..repositories import vms as vms_repo


def _init_vars(ctx, conn=None):
    """Extra variables of iaas_init.yaml / iaas_destroy.yaml."""
    return {
        "repository": ctx.config["REPOSITORY"],
        "export": ctx.config["EXPORT"],
        "nfs_server": ctx.config["NFS_SERVER"],
        "nfs_clients": hosts_repo.addresses(conn or ctx.conn, share="nfs"),
    }


def refresh_export(ctx, share="nfs"):
    """Re-run iaas_init.yaml so the NFS export names exactly the registered NFS hosts."""
    if share != "nfs" or not ctx.config["CONTROLLER_PREPARE"] or ctx.config["EXPORT"] == "none":
        return
    ctx.log("refreshing the repository's NFS export for the registered hosts")
    ctx.provisioner.run(
        "iaas_init.yaml", extravars=_init_vars(ctx), log=ctx.log, cancel=ctx.should_stop
    )


@operation("controller.init", "controller", time_limit=1800, label="initialise controller")
def init_controller(ctx):
    """Create the repository folders and run iaas_init.yaml."""
    ctx.storage.ensure_layout()
    ctx.log(f"repository ready at {ctx.config['REPOSITORY']}")
    if not ctx.config["CONTROLLER_PREPARE"]:
        ctx.log("CONTROLLER_PREPARE is off: iaas_init.yaml not run")
        return
    ctx.provisioner.run(
        "iaas_init.yaml", extravars=_init_vars(ctx), log=ctx.log, cancel=ctx.should_stop
    )


def _remove_one_host(ctx, host_id):
    """Remove one host (its own connection: this runs in a pool thread); returns an error or None."""
    from .host_work import remove_host_now

    conn = connect(ctx.config["DATABASE"])
    child = ctx.with_connection(conn)
    try:
        if not _claim_host_and_vms(conn, host_id, ctx.id):
            return "busy: another operation holds the host or one of its VMs"
        remove_host_now(child, host_id)
        return None
    except Exception as exc:  # any failure releases the host and its VMs, in error
        message = str(exc) if isinstance(exc, NubeError) else f"{type(exc).__name__}: {exc}"
        _release(conn, host_id, ctx.id, message)
        return message
    finally:
        conn.close()


class _Taken(Exception):
    """Something to claim already has a task; rolls the claim back."""


def _claim_host_and_vms(conn, host_id, op_id):
    """Take the tasks of a host and all its VMs for this operation, all or nothing."""
    try:
        with transaction(conn):
            if not hosts_repo.claim_task(conn, host_id, "removing", op_id):
                raise _Taken
            for vm in vms_repo.on_host(conn, host_id):
                if not vms_repo.claim_task(conn, vm["id"], "removing", op_id):
                    raise _Taken
            hosts_repo.update(conn, host_id, state="removing")
    except _Taken:
        return False
    return True


def _release(conn, host_id, op_id, error):
    """Give back a host (in error) and its VMs after a failed removal."""
    with transaction(conn):
        for vm in vms_repo.on_host(conn, host_id):
            vms_repo.clear_task(conn, vm["id"], op_id)
        hosts_repo.clear_task(conn, host_id, op_id)
        hosts_repo.update(conn, host_id, state="error", error=f"removal failed: {error}")


@operation("controller.destroy", "controller", time_limit=7200, label="destroy IaaS")
def destroy_controller(ctx):
    """Remove every VM and host (hosts in parallel), then run iaas_destroy.yaml."""
    hosts = [dict(h) for h in hosts_repo.search(ctx.conn)]
    ctx.progress(0, len(hosts) + 1)
    ctx.log(f"removing {len(hosts)} host(s) and their VMs")
    failures = {}
    if hosts:
        with ThreadPoolExecutor(max_workers=min(8, len(hosts))) as pool:
            results = pool.map(lambda h: (h, _remove_one_host(ctx, h["id"])), hosts)
            for done, (host, error) in enumerate(results, start=1):
                if error:
                    failures[host["name"]] = error
                    ctx.error(
                        f"host {host['name']} could not be removed and stays registered: {error}"
                    )
                ctx.progress(done, len(hosts) + 1)
    if failures:
        raise OperationFailed(
            f"{len(failures)} host(s) could not be removed: {', '.join(sorted(failures))};"
            " iaas_destroy.yaml not run"
        )
    if ctx.config["CONTROLLER_PREPARE"]:
        extravars = {**_init_vars(ctx), "purge": bool(ctx.input.get("purge"))}
        ctx.provisioner.run(
            "iaas_destroy.yaml", extravars=extravars, log=ctx.log, cancel=ctx.should_stop
        )
    if ctx.input.get("purge"):
        for image in ctx.storage.list_images():
            ctx.storage.delete_image(image.name)
            ctx.log(f"purged image {image.name}")
    ctx.progress(len(hosts) + 1, len(hosts) + 1)
