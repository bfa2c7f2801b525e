"""What controller operations do: iaas_init.yaml and the big teardown."""

from concurrent.futures import ThreadPoolExecutor

from ..db import connect, transaction
from ..errors import Busy, NotFound, NubeError, OperationFailed
from ..ops.claims import Target, release_host_and_vms, take_each
from ..repositories import hosts as hosts_repo
from ..repositories import volumes as volumes_repo
from . import export_work, host_work


def init_controller(ctx):
    """Create the repository folders and run iaas_init.yaml."""
    ctx.storage.ensure_layout()
    ctx.log(f"repository ready at {ctx.config['REPOSITORY']}")
    if not ctx.config["CONTROLLER_PREPARE"]:
        ctx.log("CONTROLLER_PREPARE is off: iaas_init.yaml not run")
        return
    ctx.provisioner.run(
        "iaas_init.yaml", extravars=export_work.init_vars(ctx), log=ctx.log, cancel=ctx.should_stop
    )


def _remove_one_host(ctx, host_id):
    """Remove one host (its own connection: this runs in a pool thread); returns an error or None."""
    conn = connect(ctx.config["DATABASE"])
    try:
        try:
            with transaction(conn):  # the host removal's claim: host and VMs, all or nothing
                row = hosts_repo.get(conn, host_id)
                if row is None:  # removed by another operation since the list was read
                    return "another operation removed it meanwhile"
                take_each(ctx, conn, Target("host", host_id, row["name"]))
        except (Busy, NotFound) as exc:
            return str(exc)
        try:
            host_work.remove_host_now(ctx.with_connection(conn), host_id)
            return None
        except Exception as exc:  # any failure releases the host and its VMs, in error
            message = str(exc) if isinstance(exc, NubeError) else f"{type(exc).__name__}: {exc}"
            with transaction(conn):
                release_host_and_vms(conn, host_id, ctx.id, f"removal failed: {message}")
            return message
    finally:
        conn.close()


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
        extravars = {**export_work.init_vars(ctx), "purge": bool(ctx.input.get("purge"))}
        ctx.provisioner.run(
            "iaas_destroy.yaml", extravars=extravars, log=ctx.log, cancel=ctx.should_stop
        )
    if ctx.input.get("purge"):
        for image in ctx.storage.list_images():
            ctx.storage.delete_image(image.name)
            ctx.log(f"purged image {image.name}")
        for volume in volumes_repo.search(ctx.conn):
            ctx.storage.delete_volume(volume["name"])
            ctx.log(f"purged volume {volume['name']}")
    ctx.progress(len(hosts) + 1, len(hosts) + 1)
