"""The sub-commands: one function each, taking the Session and returning the exit code."""

from . import config, follow, inputs, output
from .calls import act, follow_operation, gone, list_items, part, show_item
from .errors import UsageError
from .http import ApiClient, check_token, check_url
from .network_commands import nics_text

HOST_COLUMNS = [
    ("id", "ID"),
    ("name", "NAME"),
    ("address", "ADDRESS"),
    ("state", "STATE"),
    ("share", "SHARE"),
    ("cpus", "CPUS"),
    ("mem", "MEM"),
    ("vm_count", "VMS"),
    ("task", "TASK"),
]
VM_COLUMNS = [
    ("id", "ID"),
    ("host_name", "HOST"),
    ("image", "IMAGE"),
    ("mem", "MEM"),
    ("vcpus", "VCPUS"),
    ("state", "STATE"),
    ("task", "TASK"),
    ("ip", "IP"),
]
OPERATION_KEYS = [
    "id",
    "kind",
    "target_type",
    "target_name",
    "status",
    "progress",
    "requested_by",
    "created_at",
    "started_at",
    "finished_at",
    "error",
    "result",
]
IMAGE_COLUMNS = [
    ("name", "NAME"),
    ("format", "FORMAT"),
    ("virtual_size", "SIZE"),
    ("actual_size", "ON DISK"),
    ("vms", "VMS"),
    ("uploaded_by", "BY"),
    ("os", "OS"),
    ("description", "DESCRIPTION"),
]
OPERATION_COLUMNS = [
    ("id", "ID"),
    ("kind", "KIND"),
    ("target_name", "TARGET"),
    ("status", "STATUS"),
    ("requested_by", "BY"),
    ("created_at", "CREATED"),
    ("finished_at", "FINISHED"),
]
USER_COLUMNS = [
    ("id", "ID"),
    ("username", "USERNAME"),
    ("role", "ROLE"),
    ("created_at", "CREATED"),
    ("last_login", "LAST LOGIN"),
]
TOKEN_COLUMNS = [
    ("id", "ID"),
    ("name", "NAME"),
    ("username", "USER"),
    ("prefix", "PREFIX"),
    ("state", "STATE"),
    ("expires_at", "EXPIRES"),
    ("last_used_at", "LAST USED"),
]
PROJECT_COLUMNS = [
    ("name", "NAME"),
    ("vms", "VMS"),
    ("vcpus", "VCPUS"),
    ("mem", "MEM MiB"),
    ("disk", "DISK GiB"),
    ("members", "MEMBERS"),
    ("description", "DESCRIPTION"),
]
QUOTA_KEYS = ("vms", "vcpus", "mem", "disk")
HOST_FIELDS = ("name", "user", "address", "state", "share", "network", "data_address")


def _who(me):
    """'username (role)' from GET /me, whether the user comes alone or under "user"."""
    user = me.get("user") if isinstance(me.get("user"), dict) else me
    return f"{user.get('username', '?')} ({user.get('role', '?')})"


def login(session):
    """Check a token with GET /me and save the URL and token in the settings file (0600)."""
    url = check_url(session.args.controller)
    if session.args.token_stdin:
        token = inputs.secret("API token", from_stdin=True)
    elif session.environ.get("NUBE_TOKEN"):
        token = session.environ["NUBE_TOKEN"]
    else:
        token = inputs.secret(f"API token for {url}: ", from_stdin=False)
    token = check_token(token)
    me = ApiClient(url, token, warn=session.warn).request("GET", "/me") or {}
    path = session.config_path
    config.save(path, {"url": url, "token": token})
    about = me.get("token") if isinstance(me.get("token"), dict) else {}
    expiry = f", expires {about['expires_at']}" if about.get("expires_at") else ""
    said = f"logged in to {url} as {_who(me)} with token {about.get('name', '?')}{expiry}"
    session.show(me, lambda out: out.write(output.clean(f"{said}; saved in {path}") + "\n"))
    return 0


def host_list(session):
    """nube host list [-q FILTER]"""
    return list_items(session, "/hosts", HOST_COLUMNS)


def host_add(session):
    """nube host add ADDRESS --user U: the sudo password from a prompt or --password-stdin."""
    args = session.args
    session.api()  # a missing URL or token is said before the password is asked for
    password = inputs.secret(
        f"sudo password for {args.user}@{args.address}: ", from_stdin=args.password_stdin
    )
    body = {"address": args.address, "user": args.user, "password": password}
    for key in ("name", "share", "network", "data_address"):
        if getattr(args, key) is not None:
            body[key] = getattr(args, key)
    return act(session, "POST", "/hosts", body)


def host_show(session):
    """nube host show HOST"""
    return show_item(session, f"/hosts/{part(session.args.host)}")


def host_update(session):
    """nube host update HOST [--name N] [--state S] [...]: a new sudo password only when asked."""
    args = session.args
    body = {key: getattr(args, key) for key in HOST_FIELDS if getattr(args, key) is not None}
    if not body and not (args.password or args.password_stdin):
        raise UsageError("nothing to change: give --name, --state or another field")
    session.api()  # a missing URL or token is said before the password is asked for
    if args.password or args.password_stdin:
        body["password"] = inputs.secret(
            f"new sudo password of host {args.host}: ", from_stdin=args.password_stdin
        )
    return act(session, "PATCH", f"/hosts/{part(args.host)}", body)


def host_drain(session):
    """nube host drain HOST"""
    return act(session, "POST", f"/hosts/{part(session.args.host)}/drain", {})


def host_remove(session):
    """nube host remove HOST [--drain]"""
    drain = "?drain=true" if session.args.drain else ""
    return act(session, "DELETE", f"/hosts/{part(session.args.host)}{drain}")


def vm_list(session):
    """nube vm list [-q FILTER]"""
    return list_items(session, "/vms", VM_COLUMNS)


def vm_show(session):
    """nube vm show VM"""
    vm = session.api().request("GET", f"/vms/{part(session.args.vm)}") or {}
    shown = {**vm, "networks": nics_text(vm.get("networks")) or "none"} if "networks" in vm else vm
    session.show(vm, lambda out: output.record(shown, out))
    return 0


def vm_create(session):
    """nube vm create ID --image I --mem MiB [...]: keys and user data read from files."""
    args = session.args
    body = {"id": args.id, "image": args.image, "mem": args.mem}
    for key in ("vcpus", "host", "hostname", "project", "disk", "networks"):
        if getattr(args, key) is not None:
            body[key] = getattr(args, key)
    if args.ssh_key:
        body["ssh_keys"] = inputs.ssh_keys(args.ssh_key)
    if args.user_data:
        body["user_data"] = inputs.read_text(args.user_data)
    if args.start:
        body["start"] = True
    return act(session, "POST", "/vms", body)


def vm_start(session):
    """nube vm start VM"""
    return act(session, "POST", f"/vms/{part(session.args.vm)}/start", {})


def vm_stop(session):
    """nube vm stop VM [--force]"""
    body = {"force": True} if session.args.force else {}
    return act(session, "POST", f"/vms/{part(session.args.vm)}/stop", body)


def vm_migrate(session):
    """nube vm migrate VM [--host H]: placement picks the host when none is named."""
    body = {"host": session.args.host} if session.args.host is not None else {}
    return act(session, "POST", f"/vms/{part(session.args.vm)}/migrate", body)


def vm_boot_log(session):
    """nube vm boot-log VM [--lines N]"""
    params = {"lines": session.args.lines}
    path = f"/vms/{part(session.args.vm)}/boot-log"
    answer = session.api().request("GET", path, params=params) or {}
    text = str(answer.get("text") or "").rstrip("\n")
    if not text and not session.as_json:
        session.say(f"the boot log of {session.args.vm} is empty")
    session.show(answer, lambda out: out.write(f"{text}\n" if text else ""))
    return 0


def vm_resize(session):
    """nube vm resize VM [--mem MiB] [--vcpus N] [--disk GiB]: memory and vCPUs while stopped."""
    args = session.args
    body = {key: getattr(args, key) for key in ("mem", "vcpus", "disk") if getattr(args, key)}
    if not body:
        raise UsageError("nothing to change: give --mem, --vcpus or --disk")
    return act(session, "POST", f"/vms/{part(args.vm)}/resize", body)


def vm_save_image(session):
    """nube vm save-image VM NAME [--snapshot S]: a stopped VM's disk as images/NAME."""
    args = session.args
    body = {"name": args.name, **({"snapshot": args.snapshot} if args.snapshot else {})}
    return act(session, "POST", f"/vms/{part(args.vm)}/save-image", body)


def vm_remove(session):
    """nube vm remove VM [--volumes]: its attached volumes are kept unless --volumes."""
    volumes = "?volumes=true" if session.args.volumes else ""
    return act(session, "DELETE", f"/vms/{part(session.args.vm)}{volumes}")


def _print_operation(operation, lines, out):
    """An operation's main fields, then its log."""
    shown = dict(operation)
    if operation.get("progress_total"):
        shown["progress"] = f"{operation.get('progress_done', 0)}/{operation['progress_total']}"
    output.record(shown, out, OPERATION_KEYS)
    out.write("log:\n")
    for line in lines:
        out.write(f"  {output.log_line(line)}\n")


def op_show(session):
    """nube op show N [--follow]"""
    op_id = session.args.id
    if session.args.follow:
        return follow_operation(session, op_id)
    operation, lines = follow.read_whole_log(session.api(), op_id)
    data = {**operation, "log": lines}
    session.show(data, lambda out: _print_operation(operation, lines, out))
    return 0


def op_list(session):
    """nube op list [-q FILTER]"""
    return list_items(session, "/operations", OPERATION_COLUMNS)


def op_cancel(session):
    """nube op cancel N"""
    return act(session, "POST", f"/operations/{session.args.id}/cancel", {})


def _sized(image):
    """An image with its sizes in binary units."""
    sizes = {key: output.size(image.get(key)) for key in ("virtual_size", "actual_size")}
    return {**image, **sizes}


def image_list(session):
    """nube image list"""
    return list_items(session, "/images", IMAGE_COLUMNS, shown=_sized)


def image_show(session):
    """nube image show NAME"""
    return show_item(session, f"/images/{part(session.args.name)}", shown=_sized)


def image_build(session):
    """nube image build NAME [--release R] [--size S]"""
    args = session.args
    body = {"name": args.name}
    body.update({key: getattr(args, key) for key in ("release", "size") if getattr(args, key)})
    return act(session, "POST", "/images/build", body)


def image_import(session):
    """nube image import NAME URL [--sha256 X | --checksums-url U] [--os O]"""
    args = session.args
    body = {"name": args.name, "url": args.image_url}  # args.url: the Nube server's
    body.update(
        {key: getattr(args, key) for key in ("sha256", "checksums_url", "os") if getattr(args, key)}
    )
    return act(session, "POST", "/images/import", body)


def image_remove(session):
    """nube image remove NAME"""
    name = session.args.name
    return gone(session, f"/images/{part(name)}", f"image {name} removed")


def user_list(session):
    """nube user list"""
    return list_items(session, "/users", USER_COLUMNS)


def user_show(session):
    """nube user show ID"""
    return show_item(session, f"/users/{session.args.id}")


def user_remove(session):
    """nube user remove ID"""
    user_id = session.args.id
    return gone(session, f"/users/{user_id}", f"user {user_id} removed, and their tokens")


def token_list(session):
    """nube token list [-q FILTER]"""
    return list_items(session, "/tokens", TOKEN_COLUMNS)


def token_revoke(session):
    """nube token revoke ID"""
    token_id = session.args.id
    return gone(session, f"/tokens/{token_id}", f"token {token_id} revoked")


def op_retry(session):
    """nube op retry N: start a failed or interrupted operation's action again."""
    return act(session, "POST", f"/operations/{session.args.id}/retry", {})


def op_recheck(session):
    """nube op recheck N: record the real state of a failed operation's target."""
    return act(session, "POST", f"/operations/{session.args.id}/recheck", {})


def host_accept_key(session):
    """nube host accept-key HOST FINGERPRINT (admins): the host's new SSH key, once confirmed."""
    args = session.args
    body = {"fingerprint": args.fingerprint}
    return act(session, "POST", f"/hosts/{part(args.host)}/accept-key", body)


def image_upload(session):
    """nube image upload NAME FILE [--description TEXT]: the file streamed as it is."""
    args = session.args
    api = session.api()
    params = {"description": args.description}
    with inputs.binary_file(args.file) as (handle, size):
        image = api.upload(f"/images/{part(args.name)}", handle, size, params) or {}
    session.show(image, lambda out: output.record(image, out))
    return 0


def _used_of(project):
    """A project's list row: each quota as 'used/limit' ('used/-' without a limit)."""
    quota, usage = project.get("quota") or {}, project.get("usage") or {}
    row = {**project, "members": ", ".join(project.get("members") or [])}
    for key in QUOTA_KEYS:
        limit = quota.get(key)
        row[key] = f"{usage.get(key, 0)}/{'-' if limit is None else limit}"
    return row


def _project_body(args):
    """The fields project create and update send: what was given, quotas under quota."""
    body = {key: getattr(args, key) for key in ("description",) if getattr(args, key) is not None}
    quota = {key: getattr(args, f"quota_{key}") for key in QUOTA_KEYS}
    quota = {key: value for key, value in quota.items() if value is not None}
    if quota:
        body["quota"] = quota
    return body


def project_list(session):
    """nube project list: every project one sees, each quota as used/limit."""
    return list_items(session, "/projects", PROJECT_COLUMNS, shown=_used_of)


def project_show(session):
    """nube project show NAME"""
    return show_item(session, f"/projects/{part(session.args.name)}")


def project_create(session):
    """nube project create NAME [--description D] [--vms N] [--vcpus N] [--mem MiB] [--disk GiB]"""
    body = {"name": session.args.name, **_project_body(session.args)}
    return act(session, "POST", "/projects", body)


def project_update(session):
    """nube project update NAME [--rename NEW] [--description D] [--vms N] [...]"""
    args = session.args
    body = _project_body(args)
    if args.rename is not None:
        body["name"] = args.rename
    if not body:
        raise UsageError("nothing to change: give --rename, --description or a quota")
    return act(session, "PATCH", f"/projects/{part(args.name)}", body)


def project_remove(session):
    """nube project remove NAME (refused while it has resources)"""
    name = session.args.name
    return gone(session, f"/projects/{part(name)}", f"project {name} removed")


def project_add_member(session):
    """nube project add-member NAME USER"""
    args = session.args
    return act(session, "POST", f"/projects/{part(args.name)}/members", {"user": args.user})


def project_remove_member(session):
    """nube project remove-member NAME USER (their VMs stay in the project)"""
    args = session.args
    return act(session, "DELETE", f"/projects/{part(args.name)}/members/{part(args.user)}")
