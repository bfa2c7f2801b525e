"""The API's request and response schemas (marshmallow): they validate bodies and query
arguments and are the OpenAPI document's components. Their bounds and patterns come from
app.limits with the services' messages; formats the services check (addresses, keys, user
data) are left to them, so the API and the dashboard answer with the same messages."""

from marshmallow import Schema, fields, validate

from ... import states
from ...limits import (
    BOOT_LOG_LINES,
    FINGERPRINT_RE,
    HOST_PASSWORD_MAX,
    HOST_PASSWORD_MESSAGE,
    IMAGE_DESCRIPTION_MAX,
    IMAGE_DESCRIPTION_MESSAGE,
    MEM,
    NAME_PATTERN,
    PASSWORD_MAX,
    PASSWORD_MESSAGE,
    PASSWORD_MIN,
    USERNAME_MESSAGE,
    USERNAME_RE,
    VCPUS,
    VOLUME_SIZE,
    Bounds,
)
from ...services.networks import NICS_MAX

MAX_PER_PAGE = 200

HOST_STATES = states.HOST.values
OPERATOR_STATES = states.HOST_OPERATOR_SETTABLE
VM_STATES = states.VM.values
SHARES = list(states.SHARE.values)
ROLES = list(states.ROLE.values)
# the users service's rule and message, as the dashboard's forms check it
PASSWORD_LENGTH = validate.Length(min=PASSWORD_MIN, max=PASSWORD_MAX, error=PASSWORD_MESSAGE)
HOST_PASSWORD = validate.Length(max=HOST_PASSWORD_MAX, error=HOST_PASSWORD_MESSAGE)
USERNAME = validate.Regexp(USERNAME_RE, error=USERNAME_MESSAGE)
NAME = {"pattern": f"^{NAME_PATTERN}$"}  # documented; the services check it, with the value


def within(bounds):
    """A number field's validators: below and above its app.limits Bounds, with their messages."""
    return [
        validate.Range(min=bounds.minimum, error=bounds.too_small),
        validate.Range(max=bounds.maximum, error=bounds.too_large),
    ]


ID_OR_NAME = {"oneOf": [{"type": "integer"}, {"type": "string"}]}


class ListArgs(Schema):
    """Query arguments of every list: filter, sort and page."""

    q = fields.String(load_default="", metadata={"description": "the filter language's query"})
    sort = fields.String(metadata={"description": "a column to sort by (lists that sort)"})
    dir = fields.String(load_default="asc", validate=validate.OneOf(("asc", "desc")))
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(validate=validate.Range(min=1, max=MAX_PER_PAGE))


class Page(Schema):
    """What every list answers besides its items."""

    total = fields.Integer(required=True)
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    pages = fields.Integer(required=True)


def page_of(item_schema, name):
    """A list answer's schema: items of one kind plus the paging figures."""
    return type(name, (Page,), {"items": fields.List(fields.Nested(item_schema), required=True)})


class OperationRef(Schema):
    """The operation an action started."""

    id = fields.Integer(required=True)
    url = fields.String(required=True)
    kind = fields.String(required=True)
    status = fields.String(required=True)


class Accepted(Schema):
    """202 Accepted: follow the operation."""

    operation = fields.Nested(OperationRef, required=True)


class Problem(Schema):
    """Problem details (RFC 9457)."""

    type = fields.String()
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    operation_id = fields.Integer(metadata={"description": "the operation a busy target runs"})
    errors = fields.Dict(metadata={"description": "field name to messages (422, 400)"})


class Host(Schema):
    """A host as listHosts shows it, plus its task and counts."""

    id = fields.Integer(required=True)
    name = fields.String(required=True)
    address = fields.String(required=True)
    data_address = fields.String(
        required=True, metadata={"description": "where live migrations reach it"}
    )
    user = fields.String(required=True)
    state = fields.String(required=True, metadata={"enum": list(HOST_STATES)})
    share = fields.String(required=True, metadata={"enum": SHARES})
    network = fields.String(required=True)
    cpus = fields.Integer(allow_none=True)
    mem = fields.Integer(allow_none=True, metadata={"description": "MiB"})
    mem_allocated = fields.Integer(metadata={"description": "MiB of the VMs placed there"})
    free_mem = fields.Integer(allow_none=True, metadata={"description": "MiB"})
    kvm = fields.Boolean()
    vm_count = fields.Integer()
    vcpus_allocated = fields.Integer()
    task = fields.String(allow_none=True)
    task_op = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)
    last_seen = fields.String(allow_none=True)
    created_at = fields.String(allow_none=True)


DATA_ADDRESS = (
    "where live migrations reach the host, on a network guests cannot reach; default or empty:"
    " its address"
)


class HostCreate(Schema):
    """addHost's input."""

    address = fields.String(required=True)
    user = fields.String(required=True)
    password = fields.String(
        load_only=True, validate=HOST_PASSWORD, metadata={"description": "the user's sudo password"}
    )
    name = fields.String(metadata={**NAME, "description": "default: the address"})
    prepare = fields.Boolean(load_default=True)
    share = fields.String(metadata={"enum": SHARES})
    network = fields.String(metadata={"description": "a libvirt network, bridge:NAME or none"})
    data_address = fields.String(metadata={"description": DATA_ADDRESS})


class HostUpdate(Schema):
    """updateHost's input: every field optional."""

    name = fields.String(metadata=NAME)
    user = fields.String()
    password = fields.String(load_only=True, validate=HOST_PASSWORD)
    network = fields.String()
    state = fields.String(metadata={"enum": list(OPERATOR_STATES)})
    address = fields.String(metadata={"description": "only while the host has no VMs"})
    share = fields.String(metadata={"enum": SHARES})
    data_address = fields.String(
        metadata={"description": DATA_ADDRESS + "; a migration under way keeps the old one"}
    )


class HostRemoveArgs(Schema):
    """Query arguments of a host's removal."""

    drain = fields.Boolean(load_default=False, metadata={"description": "move its VMs away"})


class VmNic(Schema):
    """One NIC of a VM: its network, address and MAC."""

    network = fields.String(required=True)
    ip = fields.String(allow_none=True)
    mac = fields.String(required=True)


NIC_REQUESTS = fields.List(
    fields.Raw(
        metadata={
            "oneOf": [
                {"type": "string", "description": "a network's name"},
                {
                    "type": "object",
                    "properties": {"network": {"type": "string"}, "ip": {"type": "string"}},
                    "required": ["network"],
                },
            ]
        }
    ),
    metadata={
        "maxItems": NICS_MAX,
        "description": "one NIC on each network, in order: a name, or {network, ip} for a"
        " fixed address (default: the next free one)",
    },
)


class Vm(Schema):
    """A VM as listVms shows it, plus what its page shows."""

    id = fields.String(required=True)
    host = fields.Integer(allow_none=True)
    host_name = fields.String(allow_none=True)
    image = fields.String(required=True)
    mem = fields.Integer(required=True, metadata={"description": "MiB"})
    vcpus = fields.Integer(required=True)
    state = fields.String(required=True, metadata={"enum": list(VM_STATES)})
    task = fields.String(allow_none=True)
    task_op = fields.Integer(allow_none=True)
    last_seen = fields.String(allow_none=True)
    hostname = fields.String(allow_none=True)
    created_by = fields.String(allow_none=True)
    created_at = fields.String(allow_none=True)
    project = fields.String(allow_none=True)
    disk = fields.Integer(allow_none=True, metadata={"description": "GiB, the virtual size"})
    ip = fields.String(allow_none=True, metadata={"description": "its first NIC's address"})
    networks = fields.List(fields.Nested(VmNic), metadata={"description": "its NICs, in order"})


class VmCreate(Schema):
    """addVm's input."""

    id = fields.String(required=True, metadata=NAME)
    image = fields.String(required=True, metadata={"description": "a file name in images/"})
    mem = fields.Integer(required=True, validate=within(MEM), metadata={"description": "MiB"})
    vcpus = fields.Integer(validate=within(VCPUS))
    host = fields.Raw(metadata={**ID_OR_NAME, "description": "default: placement"})
    start = fields.Boolean(load_default=False)
    hostname = fields.String(metadata={"description": "default: the id"})
    ssh_keys = fields.List(fields.String(), metadata={"description": "public keys"})
    user_data = fields.String(metadata={"description": "#cloud-config or a #! script"})
    project = fields.String(
        metadata={"description": "default: your only project (members) or default"}
    )
    disk = fields.Integer(
        metadata={"description": "GiB, at least the image's virtual size (default: that size)"}
    )
    networks = NIC_REQUESTS


class VmRemoveArgs(Schema):
    """Query arguments of a VM's removal."""

    volumes = fields.Boolean(
        load_default=False,
        metadata={
            "description": "remove its attached volumes too (default: they are detached and kept)"
        },
    )


# resizeVm's disk: a size in GiB as a volume's, named after its own field
DISK_SIZE = Bounds("disk", VOLUME_SIZE.minimum, VOLUME_SIZE.maximum)


class VmResize(Schema):
    """resizeVm's input: memory and vCPUs of a stopped VM, a disk that only grows."""

    mem = fields.Integer(validate=within(MEM), metadata={"description": "MiB; stopped VMs only"})
    vcpus = fields.Integer(validate=within(VCPUS), metadata={"description": "stopped VMs only"})
    disk = fields.Integer(
        validate=within(DISK_SIZE),
        metadata={"description": "GiB, larger than now (grows only); running or stopped"},
    )


class VmStop(Schema):
    """How to stop a VM."""

    force = fields.Boolean(load_default=False, metadata={"description": "power off at once"})


class VmMigrate(Schema):
    """Where to move a VM."""

    host = fields.Raw(allow_none=True, metadata={**ID_OR_NAME, "description": "default: placement"})


class BootLogArgs(Schema):
    """How much of the boot log to read."""

    lines = fields.Integer(load_default=200, validate=within(BOOT_LOG_LINES))


class BootLog(Schema):
    """The tail of a VM's serial console log."""

    text = fields.String(required=True)


class Image(Schema):
    """A base image in the repository."""

    name = fields.String(required=True)
    format = fields.String(allow_none=True)
    virtual_size = fields.Integer(allow_none=True, metadata={"description": "bytes"})
    actual_size = fields.Integer(allow_none=True, metadata={"description": "bytes"})
    mtime = fields.Float(allow_none=True)
    description = fields.String(allow_none=True)
    uploaded_by = fields.String(allow_none=True)
    vms = fields.Integer(metadata={"description": "how many VMs use it"})
    os = fields.String(allow_none=True, metadata={"description": "what it holds, e.g. debian-12"})
    sha256 = fields.String(
        allow_none=True, metadata={"description": "of the file Nube wrote (none: found in images/)"}
    )
    source = fields.String(
        allow_none=True, metadata={"enum": ["build", "upload", "import", "vm", None]}
    )
    source_url = fields.String(
        allow_none=True, metadata={"description": "an import's URL (not shown to members)"}
    )


class ImageBuild(Schema):
    """buildImage's input."""

    name = fields.String(required=True, metadata={"description": "built as images/NAME.qcow2"})
    release = fields.String(metadata={"description": "a Debian code name; default bookworm"})
    size = fields.Raw(metadata={"oneOf": [{"type": "integer"}, {"type": "string"}]})


class LogLine(Schema):
    """One line of an operation's log."""

    id = fields.Integer(required=True)
    ts = fields.String(required=True)
    level = fields.String(required=True)
    message = fields.String(required=True)


class Progress(Schema):
    """How far an operation is, as the dashboard shows it."""

    percent = fields.Integer(
        required=True, metadata={"description": "of its tasks done; 100 when it counts none"}
    )
    text = fields.String(
        required=True, metadata={"description": "e.g. 3 of 7 tasks, waiting for a worker"}
    )


class Operation(Schema):
    """An operation: what, on what, by whom, how it went, and its log after a line id."""

    id = fields.Integer(required=True)
    url = fields.String(required=True)
    kind = fields.String(required=True)
    target_type = fields.String(allow_none=True)
    target_id = fields.String(allow_none=True)
    target_name = fields.String(allow_none=True)
    status = fields.String(required=True)
    requested_by = fields.String(allow_none=True)
    input = fields.Dict(allow_none=True)
    result = fields.Raw(allow_none=True)
    error = fields.String(allow_none=True)
    cancel_requested = fields.Boolean()
    worker = fields.String(allow_none=True, metadata={"description": "host:pid running it"})
    heartbeat = fields.String(allow_none=True, metadata={"description": "its worker's last beat"})
    progress_done = fields.Integer(allow_none=True)
    progress_total = fields.Integer(allow_none=True)
    progress = fields.Nested(Progress)
    created_at = fields.String(allow_none=True)
    started_at = fields.String(allow_none=True)
    finished_at = fields.String(allow_none=True)
    done = fields.Boolean(metadata={"description": "terminal, and every log line is here"})
    log = fields.List(fields.Nested(LogLine))
    more = fields.Boolean(metadata={"description": "more log lines wait: ask again"})


class OperationArgs(Schema):
    """Which log lines to send: those after a line id."""

    after = fields.Integer(load_default=0, validate=validate.Range(min=0, max=2**62))


class User(Schema):
    """A user account."""

    id = fields.Integer(required=True)
    username = fields.String(required=True)
    role = fields.String(required=True, metadata={"enum": ROLES})
    created_at = fields.String(allow_none=True)
    last_login = fields.String(allow_none=True)


class UserCreate(Schema):
    """A new user."""

    username = fields.String(required=True, validate=USERNAME)
    password = fields.String(required=True, load_only=True, validate=PASSWORD_LENGTH)
    role = fields.String(required=True, metadata={"enum": ROLES})


class UserUpdate(Schema):
    """A user's new role or password."""

    role = fields.String(metadata={"enum": ROLES})
    password = fields.String(load_only=True, validate=PASSWORD_LENGTH)


class Quota(Schema):
    """A project's limits (null: none) or its usage, counted from its rows."""

    vms = fields.Integer(allow_none=True)
    vcpus = fields.Integer(allow_none=True)
    mem = fields.Integer(allow_none=True, metadata={"description": "MiB"})
    disk = fields.Integer(allow_none=True, metadata={"description": "GiB"})


class Project(Schema):
    """A project: its quotas, what it uses and its members."""

    name = fields.String(required=True)
    description = fields.String()
    quota = fields.Nested(Quota)
    usage = fields.Nested(Quota)
    members = fields.List(fields.String())
    created_at = fields.String(allow_none=True)


class ProjectCreate(Schema):
    """A new project."""

    name = fields.String(required=True)
    description = fields.String()
    quota = fields.Dict()


class ProjectUpdate(Schema):
    """A project's new name, description or quotas (the keys given only)."""

    name = fields.String()
    description = fields.String()
    quota = fields.Dict()


class Member(Schema):
    """A user to add to a project."""

    user = fields.String(required=True)


class Token(Schema):
    """An API token as its list shows it (never the secret)."""

    id = fields.Integer(required=True)
    name = fields.String(required=True)
    user_id = fields.Integer(required=True)
    username = fields.String(required=True)
    prefix = fields.String(required=True, metadata={"description": "the token's first characters"})
    state = fields.String(required=True, metadata={"enum": list(states.TOKEN.values)})
    created_at = fields.String(allow_none=True)
    expires_at = fields.String(allow_none=True)
    last_used_at = fields.String(allow_none=True)
    revoked_at = fields.String(allow_none=True)


class TokenSummary(Schema):
    """The token a request came with."""

    id = fields.Integer(required=True)
    name = fields.String(required=True)
    expires_at = fields.String(allow_none=True)


class Me(Schema):
    """The calling user, and the token used (null for a dashboard session)."""

    id = fields.Integer(required=True)
    username = fields.String(required=True)
    role = fields.String(required=True)
    token = fields.Nested(TokenSummary, allow_none=True)


class PageArgs(Schema):
    """Query arguments of a list that neither filters nor sorts."""

    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(validate=validate.Range(min=1, max=MAX_PER_PAGE))


class HostKeyAccept(Schema):
    """The fingerprint of the key a reinstalled host offers now, read on the host itself."""

    fingerprint = fields.String(
        required=True,
        metadata={
            "pattern": f"^{FINGERPRINT_RE.pattern}$",
            "description": "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on the host",
        },
    )


class ImageUploadArgs(Schema):
    """Query arguments of an image upload (the file itself is the request body)."""

    description = fields.String(
        load_default="",
        validate=validate.Length(max=IMAGE_DESCRIPTION_MAX, error=IMAGE_DESCRIPTION_MESSAGE),
    )
