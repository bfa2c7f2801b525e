"""The repository's NFS export: iaas_init.yaml's variables, re-run as hosts come and go."""

from ..addresses import check_address
from ..repositories import hosts as hosts_repo


def init_vars(ctx, conn=None):
    """Extra variables of iaas_init.yaml / iaas_destroy.yaml."""
    return {
        "repository": ctx.config["REPOSITORY"],
        "export": ctx.config["EXPORT"],
        "nfs_server": ctx.config["NFS_SERVER"],
        # checked again: each lands in /etc/exports or ganesha's configuration as text
        "nfs_clients": [
            check_address(address) for address in hosts_repo.addresses(conn or ctx.conn, "nfs")
        ],
    }


def refresh_export(ctx, share="nfs"):
    """Re-run iaas_init.yaml so the NFS export names exactly the registered NFS hosts."""
    if share != "nfs" or not ctx.config["CONTROLLER_PREPARE"] or ctx.config["EXPORT"] == "none":
        return
    ctx.log("refreshing the repository's NFS export for the registered hosts")
    ctx.provisioner.run(
        "iaas_init.yaml", extravars=init_vars(ctx), log=ctx.log, cancel=ctx.should_stop
    )
