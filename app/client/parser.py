"""The command line: argparse sub-commands as docs/api.md lists them, each naming its handler."""

import argparse

from . import commands

DESCRIPTION = "Nube's command-line client: hosts, VMs and operations through the HTTP API."
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
    """A command group (host, vm, op) whose sub-command is required."""
    group = subparsers.add_parser(name, help=help_text, description=help_text)
    inner = group.add_subparsers(dest=f"{name}_command", metavar="COMMAND", required=True)
    return inner


def _command(subparsers, name, handler, help_text, common, wait=False):
    """A sub-command that runs handler, with the global options (and --wait for actions)."""
    parser = subparsers.add_parser(name, help=help_text, description=help_text, parents=[common])
    parser.set_defaults(handler=handler)
    if wait:
        parser.add_argument(
            "--wait", action="store_true", help="follow the operation to its end, printing its log"
        )
    return parser


def _list_options(parser):
    """-q FILTER, --page N, --per-page K."""
    parser.add_argument("-q", "--query", metavar="FILTER", help="e.g. 'state = running'")
    parser.add_argument("--page", type=positive, help="only this page (default: every page)")
    parser.add_argument("--per-page", type=positive, metavar="K", help="rows a page (1 to 200)")


def _host_commands(subparsers, common):
    """host list | add | remove; returns the group, for more commands."""
    hosts = _group(subparsers, "host", "hosts")
    _list_options(_command(hosts, "list", commands.host_list, "list hosts", common))
    add = _command(hosts, "add", commands.host_add, "add and prepare a host", common, wait=True)
    add.add_argument("address", metavar="ADDRESS")
    add.add_argument("--user", required=True, help="a sudo user on the host")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the sudo password from stdin"
    )
    add.add_argument("--name", help="default: the address")
    add.add_argument("--share", help="how the host mounts the repository (nfs, bind)")
    add.add_argument("--network", help="the libvirt network or bridge of its VMs, or none")
    add.add_argument("--data-address", help="where live migrations reach it (default: the address)")
    remove = _command(hosts, "remove", commands.host_remove, "remove a host", common, wait=True)
    remove.add_argument("host", metavar="HOST", help="id or name")
    remove.add_argument("--drain", action="store_true", help="move its VMs away first")
    return hosts


def _vm_commands(subparsers, common):
    """vm list | show | create | start | stop | remove."""
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
    for name, handler, help_text in (
        ("start", commands.vm_start, "start a VM"),
        ("stop", commands.vm_stop, "stop a VM"),
        ("remove", commands.vm_remove, "remove a VM, its disk, seed and log"),
    ):
        action = _command(vms, name, handler, help_text, common, wait=True)
        action.add_argument("vm", metavar="VM")
        if name == "stop":
            action.add_argument("--force", action="store_true", help="power off at once")


def _op_commands(subparsers, common):
    """op show N [--follow]; returns the group, for more commands."""
    ops = _group(subparsers, "op", "operations")
    show = _command(ops, "show", commands.op_show, "show an operation and its log", common)
    show.add_argument("id", type=positive, metavar="N")
    show.add_argument("--follow", action="store_true", help="follow it to its end")
    return ops


# --- Actions only the dashboard had until issue 25 (branch craft-api): op retry | recheck,
# host accept-key, image upload. The image group belongs with the other image commands.


def _recover_commands(ops, common):
    """op retry N | op recheck N."""
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


def _image_upload_command(images, common):
    """image upload NAME FILE."""
    upload = _command(images, "upload", commands.image_upload, "upload a base image", common)
    upload.add_argument("name", metavar="NAME", help="its file name in images/ (with extension)")
    upload.add_argument("file", metavar="FILE", help="a qcow2 or raw disk image")
    upload.add_argument("--description", help="what it is")


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
    ops = _op_commands(subparsers, common)
    # actions only the dashboard had until issue 25 (craft-api)
    _recover_commands(ops, common)
    _accept_key_command(hosts, common)
    _image_upload_command(_group(subparsers, "image", "base images"), common)
    return parser
