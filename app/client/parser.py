"""The command line: argparse sub-commands as docs/api.md lists them, each naming its handler."""

import argparse

from . import commands, network_commands, routes, snapshot_commands, volume_commands

DESCRIPTION = (
    "Nube's command-line client: hosts, VMs and their snapshots, volumes, networks, images, "
    "operations, users and tokens through the HTTP API."
)
EPILOG = (
    "exit codes: 0 done, 1 the followed operation did not succeed, 2 usage, 3 input refused, "
    "4 not authenticated or not allowed, 5 not found, 6 conflict (busy, wrong state, name "
    "taken), 7 controller unreachable or failing"
)


def positive(text):
    """An integer of at least 1 (argparse type)."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {number}")
    return number


def _global_options(parser, top):
    """-o, --url and --config; sub-commands take them too, without overriding the top's."""
    keep = argparse.SUPPRESS
    parser.add_argument(
        "-o",
        "--output",
        choices=("table", "json"),
        default="table" if top else keep,
        help="how to print answers (default: table)",
    )
    parser.add_argument(
        "--url", default=None if top else keep, help="the controller's URL (else NUBE_URL, saved)"
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None if top else keep,
        help="settings file (default: $XDG_CONFIG_HOME/nube/config.json)",
    )


def _group(subparsers, name, help_text):
    """A command group (host, vm, image, op, user, token) whose sub-command is required."""
    group = subparsers.add_parser(name, help=help_text, description=help_text)
    inner = group.add_subparsers(dest=f"{name}_command", metavar="COMMAND", required=True)
    return inner


def _command(subparsers, name, handler, help_text, common, wait=False):
    """A sub-command that runs handler, with the global options (and --wait for actions); its
    help ends with the API route it calls."""
    parser = subparsers.add_parser(name, help=help_text, description=help_text, parents=[common])
    parser.epilog = routes.describe(parser.prog.removeprefix("nube ")) or None
    parser.set_defaults(handler=handler)
    if wait:
        parser.add_argument(
            "--wait", action="store_true", help="follow the operation to its end, printing its log"
        )
    return parser


def _list_options(parser, query=True):
    """-q FILTER (lists that filter), --page N, --per-page K."""
    if query:
        parser.add_argument("-q", "--query", metavar="FILTER", help="e.g. 'state = running'")
    parser.add_argument("--page", type=positive, help="only this page (default: every page)")
    parser.add_argument("--per-page", type=positive, metavar="K", help="rows a page (1 to 200)")


def _host_options(parser, adding):
    """The host's fields host add and host update both take."""
    parser.add_argument("--name", help="default: the address" if adding else "a new name")
    parser.add_argument("--share", help="how the host mounts the repository (nfs, bind)")
    parser.add_argument("--network", help="the libvirt network or bridge of its VMs, or none")
    parser.add_argument(
        "--data-address",
        help="where live migrations reach it" + (" (default: the address)" if adding else ""),
    )
    parser.add_argument(
        "--password-stdin", action="store_true", help="read the sudo password from stdin"
    )


def _host_commands(subparsers, common):
    """host list | show | add | update | drain | remove | accept-key; returns the group."""
    hosts = _group(subparsers, "host", "hosts")
    _list_options(_command(hosts, "list", commands.host_list, "list hosts", common))
    show = _command(hosts, "show", commands.host_show, "show one host", common)
    show.add_argument("host", metavar="HOST", help="id or name")
    add = _command(hosts, "add", commands.host_add, "add and prepare a host", common, wait=True)
    add.add_argument("address", metavar="ADDRESS")
    add.add_argument("--user", required=True, help="a sudo user on the host")
    _host_options(add, adding=True)
    update = _command(
        hosts, "update", commands.host_update, "change a host (a new address or share "
        "prepares it again)", common, wait=True,
    )  # fmt: skip
    update.add_argument("host", metavar="HOST", help="id or name")
    update.add_argument("--user", help="a sudo user on the host")
    update.add_argument("--address", help="only while the host has no VMs")
    update.add_argument("--state", help="ready, disabled or maintenance (placement skips those)")
    update.add_argument(
        "--password", action="store_true", help="ask for a new sudo password at a prompt"
    )
    _host_options(update, adding=False)
    drain = _command(
        hosts, "drain", commands.host_drain, "put a host in maintenance and move its VMs away",
        common, wait=True,
    )  # fmt: skip
    drain.add_argument("host", metavar="HOST", help="id or name")
    remove = _command(hosts, "remove", commands.host_remove, "remove a host", common, wait=True)
    remove.add_argument("host", metavar="HOST", help="id or name")
    remove.add_argument("--drain", action="store_true", help="move its VMs away first")
    return hosts


def _vm_commands(subparsers, common):
    """vm list | show | create | start | stop | migrate | resize | boot-log | remove, and the
    snapshot commands."""
    vms = _group(subparsers, "vm", "virtual machines")
    _list_options(_command(vms, "list", commands.vm_list, "list VMs", common))
    _command(vms, "show", commands.vm_show, "show one VM", common).add_argument("vm", metavar="VM")
    create = _command(vms, "create", commands.vm_create, "create a VM", common, wait=True)
    create.add_argument("id", metavar="ID")
    create.add_argument("--image", required=True)
    create.add_argument("--mem", required=True, type=int, metavar="MiB")
    create.add_argument("--vcpus", type=int, metavar="N")
    create.add_argument("--host", metavar="H", help="id or name (default: placement picks)")
    create.add_argument("--hostname", metavar="H", help="the guest's hostname (default: ID)")
    create.add_argument(
        "--ssh-key", action="append", metavar="FILE", help="a public key file (repeatable)"
    )
    create.add_argument("--user-data", metavar="FILE", help="cloud-init user data ('-': stdin)")
    create.add_argument("--start", action="store_true", help="start it once created")
    create.add_argument("--project", help="default: your only project")
    create.add_argument(
        "--disk", type=int, metavar="GiB", help="at least the image's size (default: that size)"
    )
    create.add_argument(
        "--network",
        dest="networks",
        action="append",
        type=network_commands.nic_request,
        metavar="NAME[=IP]",
        help="a NIC on this network, with a fixed address or the next free one (repeatable,"
        " in order)",
    )
    for name, handler, help_text in (
        ("start", commands.vm_start, "start a VM"),
        ("stop", commands.vm_stop, "stop a VM"),
        ("remove", commands.vm_remove, "remove a VM, its disk, seed and log"),
    ):
        action = _command(vms, name, handler, help_text, common, wait=True)
        action.add_argument("vm", metavar="VM")
        if name == "stop":
            action.add_argument("--force", action="store_true", help="power off at once")
        if name == "remove":
            action.add_argument(
                "--volumes", action="store_true", help="remove its volumes too (default: kept)"
            )
    migrate = _command(
        vms, "migrate", commands.vm_migrate, "move a VM to another host, live when it runs",
        common, wait=True,
    )  # fmt: skip
    migrate.add_argument("vm", metavar="VM")
    migrate.add_argument(
        "--host", "--to", metavar="H", help="id or name (default: placement picks)"
    )
    resize = _command(
        vms, "resize", commands.vm_resize, "change a stopped VM's memory and vCPUs, or grow its "
        "disk", common, wait=True,
    )  # fmt: skip
    resize.add_argument("vm", metavar="VM")
    resize.add_argument("--mem", type=positive, metavar="MiB", help="stopped VMs only")
    resize.add_argument("--vcpus", type=positive, metavar="N", help="stopped VMs only")
    resize.add_argument("--disk", type=positive, metavar="GiB", help="larger than now (grows only)")
    save = _command(
        vms, "save-image", commands.vm_save_image, "save a stopped VM as an image (flattened, "
        "without its identity)", common, wait=True,
    )  # fmt: skip
    save.add_argument("vm", metavar="VM")
    save.add_argument("name", metavar="NAME", help="the image's file name (.qcow2 or .img)")
    save.add_argument("--snapshot", metavar="S", help="one of its snapshots (default: its disk)")
    boot_log = _command(vms, "boot-log", commands.vm_boot_log, "a VM's boot log's tail", common)
    boot_log.add_argument("vm", metavar="VM")
    boot_log.add_argument("--lines", type=positive, metavar="N", help="how many (default: 200)")
    _snapshot_commands(vms, common)


def _snapshot_commands(vms, common):
    """vm snapshot | snapshots | snapshot-show | revert | snapshot-remove."""
    listing = _command(
        vms, "snapshots", snapshot_commands.vm_snapshots, "list a VM's snapshots", common
    )
    listing.add_argument("vm", metavar="VM")
    _list_options(listing, query=False)
    for name, handler, help_text, wait, destructive in (
        ("snapshot", snapshot_commands.vm_snapshot,
         "snapshot a VM's disk and attached volumes together", True, False),
        ("snapshot-show", snapshot_commands.vm_snapshot_show, "show one snapshot", False, False),
        ("revert", snapshot_commands.vm_revert, "bring a stopped VM back to a snapshot (what "
         "was written since is lost)", True, True),
        ("snapshot-remove", snapshot_commands.vm_snapshot_remove,
         "delete a snapshot (the VM keeps its data)", True, True),
    ):  # fmt: skip
        action = _command(vms, name, handler, help_text, common, wait=wait)
        action.add_argument("vm", metavar="VM")
        action.add_argument("name", metavar="NAME", help="the snapshot's name")
        if destructive:
            action.add_argument("-y", "--yes", action="store_true", help="do not ask to confirm")


def _volume_commands(subparsers, common):
    """volume list | show | create | attach | detach | grow | remove."""
    volumes = _group(subparsers, "volume", "volumes: disks of their own, attached to VMs")
    _list_options(_command(volumes, "list", volume_commands.volume_list, "list volumes", common))
    show = _command(volumes, "show", volume_commands.volume_show, "show one volume", common)
    show.add_argument("name", metavar="NAME")
    create = _command(
        volumes, "create", volume_commands.volume_create, "make a volume, empty or from an image",
        common, wait=True,
    )  # fmt: skip
    create.add_argument("name", metavar="NAME", help="also its file, volumes/NAME.qcow2")
    create.add_argument("--size", required=True, type=positive, metavar="GiB")
    create.add_argument("--image", help="an image in images/ (default: empty)")
    create.add_argument("--project", help="default: your only project")
    attach = _command(
        volumes, "attach", volume_commands.volume_attach, "attach a volume to a VM (hot-plugged "
        "when it runs)", common, wait=True,
    )  # fmt: skip
    attach.add_argument("name", metavar="NAME")
    attach.add_argument("vm", metavar="VM")
    grow = _command(
        volumes, "grow", volume_commands.volume_grow, "grow a volume (never shrink)", common,
        wait=True,
    )  # fmt: skip
    grow.add_argument("name", metavar="NAME")
    grow.add_argument("size", type=positive, metavar="GiB", help="the new size")
    for name, handler, help_text in (
        ("detach", volume_commands.volume_detach, "detach a volume from its VM"),
        ("remove", volume_commands.volume_remove, "remove a volume attached to no VM"),
    ):
        _command(volumes, name, handler, help_text, common, wait=True).add_argument(
            "name", metavar="NAME"
        )


def _rule_option(parser):
    """--rule RULE (repeatable): one rule of a network's security group, as text."""
    parser.add_argument(
        "--rule",
        action="append",
        dest="rules",
        metavar="RULE",
        help="inbound traffic its VMs let in, e.g. 'tcp/22 from any', 'udp/53 from network',"
        " 'icmp from 10.0.0.0/8' (repeatable)",
    )


def _network_commands(subparsers, common):
    """network list | show | create | rules | remove."""
    networks = _group(subparsers, "network", "virtual networks and their addresses")
    _list_options(
        _command(networks, "list", network_commands.network_list, "list networks", common)
    )
    show = _command(
        networks, "show", network_commands.network_show, "show a network and its addresses in use",
        common,
    )  # fmt: skip
    show.add_argument("name", metavar="NAME")
    create = _command(
        networks, "create", network_commands.network_create, "define a network", common
    )
    create.add_argument("name", metavar="NAME")
    create.add_argument("--cidr", required=True, help="IPv4, /16 to /29, e.g. 10.20.0.0/24")
    create.add_argument("--type", choices=("vxlan", "bridge"), help="default: vxlan (an overlay)")
    create.add_argument("--gateway", metavar="IP", help="an address of the CIDR")
    create.add_argument(
        "--dns", action="append", metavar="IP", help="a resolver (repeatable, or comma-separated)"
    )
    create.add_argument("--range", metavar="FIRST-LAST", help="the addresses Nube hands out")
    create.add_argument("--bridge", help="type bridge: the hosts' existing bridge (e.g. br0)")
    create.add_argument("--mtu", type=positive, help="default: 1450 for vxlan")
    create.add_argument("--project", help="default: your only project")
    _rule_option(create)  # none given: from its own range, and SSH from anywhere
    rules = _command(
        networks, "rules", network_commands.network_rules, "replace a network's rules (its "
        "security group) and bring them to its hosts", common, wait=True,
    )  # fmt: skip
    rules.add_argument("name", metavar="NAME")
    chosen = rules.add_mutually_exclusive_group()
    _rule_option(chosen)
    chosen.add_argument(
        "--none", action="store_true", help="no rules: only replies to the VMs' own connections"
    )
    remove = _command(
        networks, "remove", network_commands.network_remove, "remove a network no VM uses", common
    )
    remove.add_argument("name", metavar="NAME")
    remove.add_argument("-y", "--yes", action="store_true", help="do not ask to confirm")


def _op_commands(subparsers, common):
    """op list | show N [--follow] | cancel N | retry N | recheck N."""
    ops = _group(subparsers, "op", "operations")
    _list_options(_command(ops, "list", commands.op_list, "list operations, newest first", common))
    show = _command(ops, "show", commands.op_show, "show an operation and its log", common)
    show.add_argument("id", type=positive, metavar="N")
    show.add_argument("--follow", action="store_true", help="follow it to its end")
    cancel = _command(
        ops, "cancel", commands.op_cancel, "ask a pending or running operation to stop "
        "(then: nube op show N --follow)", common,
    )  # fmt: skip
    cancel.add_argument("id", type=positive, metavar="N")
    for name, handler, help_text in (
        ("retry", commands.op_retry, "start a failed operation's action again"),
        ("recheck", commands.op_recheck, "record the real state of a failed operation's target"),
    ):
        action = _command(ops, name, handler, help_text, common, wait=True)
        action.add_argument("id", type=positive, metavar="N")


def _accept_key_command(hosts, common):
    """host accept-key HOST FINGERPRINT."""
    help_text = "accept the new SSH key of a reinstalled host (admins)"
    accept = _command(hosts, "accept-key", commands.host_accept_key, help_text, common)
    accept.add_argument("host", metavar="HOST", help="id or name")
    accept.add_argument(
        "fingerprint", metavar="FINGERPRINT", help="SHA256:..., read on the host itself"
    )


def _image_commands(subparsers, common):
    """image list | show | build | import | remove | upload."""
    images = _group(subparsers, "image", "base images")
    _list_options(_command(images, "list", commands.image_list, "list images", common), False)
    show = _command(images, "show", commands.image_show, "show one image", common)
    show.add_argument("name", metavar="NAME")
    build = _command(
        images, "build", commands.image_build, "build a Debian image with cloud-init",
        common, wait=True,
    )  # fmt: skip
    build.add_argument("name", metavar="NAME", help="built as images/NAME.qcow2")
    build.add_argument("--release", help="a Debian code name (default: bookworm)")
    build.add_argument("--size", help="the disk's size, e.g. 4G (default: 4G)")
    imported = _command(
        images, "import", commands.image_import,
        "import an image from an http(s) URL (checked, stored as qcow2)", common, wait=True,
    )  # fmt: skip
    imported.add_argument("name", metavar="NAME", help="stored as images/NAME.qcow2")
    imported.add_argument("image_url", metavar="URL", help="http:// or https://")
    checksum = imported.add_mutually_exclusive_group()
    checksum.add_argument("--sha256", help="the file's SHA-256 (64 hex digits)")
    checksum.add_argument(
        "--checksums-url", metavar="URL", help="a SHA256SUMS file that names the URL's file"
    )
    imported.add_argument("--os", help="what it holds, e.g. debian-12")
    remove = _command(images, "remove", commands.image_remove, "remove an unused image", common)
    remove.add_argument("name", metavar="NAME")
    upload = _command(images, "upload", commands.image_upload, "upload a base image", common)
    upload.add_argument("name", metavar="NAME", help="its file name in images/ (with extension)")
    upload.add_argument("file", metavar="FILE", help="a qcow2 or raw disk image")
    upload.add_argument("--description", help="what it is")


def _quota_options(parser, creating):
    """A project's description and quotas (create and update)."""
    parser.add_argument("--description", help="what the project is for")
    unlimited = " (default: no limit)" if creating else ""
    for key, unit in (("vms", "VMs"), ("vcpus", "vCPUs"), ("mem", "MiB"), ("disk", "GiB")):
        parser.add_argument(
            f"--{key}",
            dest=f"quota_{key}",
            type=int,
            metavar="N",
            help=f"quota in {unit}{unlimited}",
        )


def _project_commands(subparsers, common):
    """project list | show | create | update | remove | add-member | remove-member."""
    projects = _group(subparsers, "project", "projects, their quotas and members")
    _list_options(_command(projects, "list", commands.project_list, "list projects", common), False)
    show = _command(projects, "show", commands.project_show, "show one project", common)
    show.add_argument("name", metavar="NAME")
    create = _command(
        projects, "create", commands.project_create, "create a project (admins)", common
    )
    create.add_argument("name", metavar="NAME")
    _quota_options(create, creating=True)
    update = _command(
        projects, "update", commands.project_update,
        "rename a project, or change its description or quotas (admins)", common,
    )  # fmt: skip
    update.add_argument("name", metavar="NAME")
    update.add_argument("--rename", metavar="NEW", help="a new name")
    _quota_options(update, creating=False)
    remove = _command(
        projects, "remove", commands.project_remove, "remove an empty project (admins)", common
    )
    remove.add_argument("name", metavar="NAME")
    for name, handler, help_text in (
        ("add-member", commands.project_add_member, "make a user a member (admins)"),
        ("remove-member", commands.project_remove_member, "end a membership (admins)"),
    ):
        member = _command(projects, name, handler, help_text, common)
        member.add_argument("name", metavar="NAME")
        member.add_argument("user", metavar="USER")


def _account_commands(subparsers, common):
    """user list | show | remove; token list | revoke (users and tokens are made on the
    dashboard: the API refuses to let a token make either)."""
    users = _group(subparsers, "user", "user accounts (admins)")
    _list_options(_command(users, "list", commands.user_list, "list users", common), False)
    for name, handler, help_text in (
        ("show", commands.user_show, "show one user"),
        ("remove", commands.user_remove, "remove a user and their tokens"),
    ):
        _command(users, name, handler, help_text, common).add_argument(
            "id", type=positive, metavar="ID"
        )
    tokens = _group(subparsers, "token", "API tokens (admins see everyone's)")
    _list_options(_command(tokens, "list", commands.token_list, "list API tokens", common))
    revoke = _command(tokens, "revoke", commands.token_revoke, "revoke a token at once", common)
    revoke.add_argument("id", type=positive, metavar="ID")


def build_parser():
    """The whole command line."""
    parser = argparse.ArgumentParser(prog="nube", description=DESCRIPTION, epilog=EPILOG)
    _global_options(parser, top=True)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, top=False)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    login = _command(subparsers, "login", commands.login, "check a token and save it", common)
    login.add_argument("controller", metavar="URL", help="e.g. https://nube.example.org")
    login.add_argument("--token-stdin", action="store_true", help="read the token from stdin")
    hosts = _host_commands(subparsers, common)
    _vm_commands(subparsers, common)
    _volume_commands(subparsers, common)
    _network_commands(subparsers, common)
    _accept_key_command(hosts, common)
    _image_commands(subparsers, common)
    _op_commands(subparsers, common)
    _project_commands(subparsers, common)
    _account_commands(subparsers, common)
    return parser
