"""Routes of the vms blueprint."""

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from ...errors import InvalidInput, NotFound, NubeError
from ...placement import free_vcpus
from ...services import (
    access,
    boot_log,
    hosts,
    image_save,
    images,
    networks,
    operations,
    projects,
    resize,
    snapshots,
    user_keys,
    vms,
    volumes,
)
from ..helpers import (
    Page,
    actor,
    flash_error,
    flash_form_errors,
    flash_operation,
    to_operation,
)
from .forms import (
    AUTOMATIC,
    AttachForm,
    ConfirmForm,
    MigrateForm,
    ResizeForm,
    SaveImageForm,
    SnapshotForm,
    VmForm,
)

bp = Blueprint("vms", __name__, url_prefix="/vms")


def _mib(value):
    """MiB as a short figure for a select option."""
    return f"{value / 1024:.1f} GiB" if value >= 1024 else f"{value} MiB"


def _host_choice(host, config):
    """One host as the new-VM form offers it: name (state, memory and vCPUs placement can
    still use)."""
    if host["mem"] is None:
        room = "memory not known yet"
    else:
        free = host["mem"] * config["MEM_OVERCOMMIT"] - host["mem_allocated"]
        room = f"{_mib(max(0, int(free)))} free"
    if host["cpus"]:
        room += f", {max(0, free_vcpus(host, config['CPU_OVERCOMMIT']))} vCPUs free"
    return str(host["id"]), f"{host['name']} ({host['state']}, {room})"


@bp.route("/")
def index():
    """VMs, filtered, sorted and paged."""
    page = Page(current_app.config["PAGE_SIZE"], "id", vms.SORT_COLUMNS)
    rows = []
    try:
        page.total = vms.count(page.query)
        rows = vms.search(page.query, page.sort, page.descending, page.per_page, page.offset)
    except NubeError as error:
        page.error = str(error)
    no_hosts = not rows and not page.query and can_place() and hosts.count() == 0
    return render_template("vms/index.html", vms=rows, page=page, no_hosts=no_hosts)


def _fill_new_form(form, image_names, newest_image, host_rows):
    """The create form's choices: images (the newest first chosen), hosts (automatic first),
    the viewer's projects and saved SSH keys."""
    form.image.choices = [(name, name) for name in image_names]
    if request.method == "GET":
        form.image.data = newest_image
    form.host.choices = [(AUTOMATIC, "Automatic (placement)")] + [
        _host_choice(host, current_app.config) for host in host_rows
    ]
    if request.method == "GET" and request.args.get("host"):
        form.host.data = request.args["host"]
    form.project.choices = projects.names_for()
    form.saved_keys.choices = [
        (key["id"], f"{key['name']} ({key['fingerprint']})")
        for key in user_keys.of_user(current_user.id)
    ]
    form.networks.choices = _network_choices(networks.search())


def _network_choices(rows):
    """The networks a new VM may have NICs on: name (CIDR, addresses free, and the project
    when the viewer sees several)."""
    several = len({row["project"] for row in rows}) > 1
    return [
        (
            row["name"],
            f"{row['name']} ({row['cidr']}, {row['free']} free"
            + (f", project {row['project']})" if several else ")"),
        )
        for row in rows
    ]


def _nic_requests(names, ip):
    """addVm's networks from the form: the names chosen, the first with its fixed address."""
    names, ip = list(names or []), (ip or "").strip()
    if not ip:
        return names
    if not names:
        raise InvalidInput("a fixed address needs a network: choose one under Networks")
    return [{"network": names[0], "ip": ip}, *names[1:]]


def _create(form):
    """Ask for the VM the form describes (its saved keys with the pasted ones): the operation
    id, or None after flashing why it was refused."""
    data = {key: form[key].data for key in vms.ADD_FIELDS if key in form}
    data["id"] = data["id"].strip()
    try:
        data["networks"] = _nic_requests(data.get("networks"), form.ip.data if "ip" in form else "")
        chosen = user_keys.public_keys(current_user.id, form.saved_keys.data or [])
        data["ssh_keys"] = "\n".join([*chosen, data["ssh_keys"] or ""])
        op_id = vms.add(data, actor(), wait=False)
    except NubeError as error:
        flash_error(error)
        return None
    flash_operation(f"Creating VM {data['id']}.", op_id)
    return op_id


@bp.route("/new", methods=["GET", "POST"])
def new():
    """Create a VM on a host Nube picks, or on the one asked for."""
    form = VmForm()
    image_names, newest_image = images.choices()
    image_facts = images.facts()
    host_rows = hosts.search() if can_place() else []  # a member lets placement choose
    _fill_new_form(form, image_names, newest_image, host_rows)
    if request.method == "GET" and newest_image in image_facts:
        form.disk.data = image_facts[newest_image]["disk"]  # proposed: the image's own size
    if image_names and form.validate_on_submit() and (op_id := _create(form)) is not None:
        return redirect(url_for("operations.show", op_id=op_id))
    if not can_place():
        del form.host
    if not form.networks.choices:
        del form.networks, form.ip  # no network to put a NIC on
    return render_template(
        "vms/new.html",
        form=form,
        has_images=bool(image_names),
        has_hosts=bool(host_rows) or not can_place(),
        image_facts=image_facts,
    )


@bp.route("/<vm_id>")
def show(vm_id):
    """One VM with its disk, first-boot configuration, boot log, volumes, snapshots, actions
    and operations."""
    vm = vms.detail(vms.get(vm_id))
    return render_template(
        "vms/show.html",
        vm=vm,
        boot=vms.first_boot(vm["id"]),
        operations=operations.for_target("vm", vm["id"]),
        confirm=ConfirmForm(),
        migrate=_migrate_form(vm) if can_place() else None,
        volumes=volumes.attached_to(vm["id"]),
        attach=_attach_form(vm["id"]),
        resize=ResizeForm(mem=vm["mem"], vcpus=vm["vcpus"], disk=vm["disk"]),
        save_image=SaveImageForm() if access.current().may("images.manage") else None,
        snapshots=snapshots.listing(vm["id"]),
        snapshot_form=SnapshotForm(),
    )


def _attach_form(vm_id):
    """The Attach form: the volumes of the VM's project that are free now."""
    form = AttachForm()
    form.volume.choices = [(name, name) for name in volumes.attachable_to(vm_id)]
    return form


def can_place():
    """Whether the viewer chooses hosts and moves VMs (not a project's member)."""
    return access.current().may("vms.place")


def _migrate_form(vm):
    """The Migrate form: the other hosts with the room each has, or automatic placement."""
    form = MigrateForm()
    form.host.choices = [(AUTOMATIC, "Automatic (placement)")] + [
        _host_choice(host, current_app.config)
        for host in hosts.search()
        if host["id"] != vm["host"]
    ]
    return form


@bp.route("/<vm_id>/migrate", methods=["POST"])
def migrate(vm_id):
    """Move a VM to another host (live when it runs)."""
    form = MigrateForm()
    if not form.validate_on_submit():
        flash("The form expired: try again.", "warning")
        return redirect(url_for("vms.show", vm_id=vm_id))
    return _act(
        vm_id,
        lambda: vms.migrate(vm_id, form.host.data or None, actor(), wait=False),
        f"Migrating VM {vm_id}.",
    )


@bp.route("/<vm_id>/boot-log.json")
def boot_log_json(vm_id):
    """The boot log after a byte offset (the last lines without one), for the live page."""
    try:
        return jsonify(boot_log.follow(vm_id, request.args.get("offset")))
    except NotFound:
        raise
    except NubeError as error:
        return jsonify(error=str(error)), 400


@bp.route("/<vm_id>/guest.json")
def guest_json(vm_id):
    """What the VM's guest agent reports (guest null when it does not answer)."""
    try:
        return jsonify(guest=vms.guest(vm_id))
    except NotFound:
        raise
    except NubeError as error:
        return jsonify(guest=None, error=vms.said_to_viewer(error))


def _act(vm_id, action, message):
    """Run one VM action; to its operation on success, back to the VM on a refusal."""
    return to_operation(action, message, lambda: redirect(url_for("vms.show", vm_id=vm_id)))


@bp.route("/<vm_id>/start", methods=["POST"])
def start(vm_id):
    """Start a VM."""
    return _act(vm_id, lambda: vms.start(vm_id, actor(), wait=False), f"Starting VM {vm_id}.")


@bp.route("/<vm_id>/stop", methods=["POST"])
def stop(vm_id):
    """Shut a VM down gracefully (forced off after STOP_TIMEOUT)."""
    return _act(vm_id, lambda: vms.stop(vm_id, actor(), wait=False), f"Stopping VM {vm_id}.")


@bp.route("/<vm_id>/force-off", methods=["POST"])
def force_off(vm_id):
    """Power a VM off at once."""
    return _act(
        vm_id, lambda: vms.stop(vm_id, actor(), wait=False, force=True), f"Forcing VM {vm_id} off."
    )


@bp.route("/<vm_id>/remove", methods=["POST"])
def remove(vm_id):
    """Remove a VM after the operator typed its name."""
    vm = vms.get(vm_id)
    form = ConfirmForm()
    if not form.validate_on_submit() or form.confirm.data.strip() != vm["id"]:
        flash(f"Type the VM's name ({vm['id']}) to confirm its removal.", "warning")
        return redirect(url_for("vms.show", vm_id=vm["id"]))
    with_volumes = form.volumes.data
    return _act(
        vm["id"],
        lambda: vms.remove(vm["id"], actor(), wait=False, volumes=with_volumes),
        f"Removing VM {vm['id']}, its disk{' and its volumes' if with_volumes else ''}.",
    )


@bp.route("/<vm_id>/attach", methods=["POST"])
def attach(vm_id):
    """Attach a volume of the VM's project to it (hot-plugged when it runs)."""
    form = AttachForm()
    if not form.validate_on_submit():
        vms.get(vm_id)  # another project's VM: 404, as for the other actions
        flash_form_errors(form)
        return redirect(url_for("vms.show", vm_id=vm_id))
    name = form.volume.data
    return _act(
        vm_id,
        lambda: volumes.attach(name, vm_id, actor(), wait=False),
        f"Attaching volume {name} to VM {vm_id}.",
    )


@bp.route("/<vm_id>/resize", methods=["POST"])
def resize_vm(vm_id):
    """Change a VM's memory and vCPUs (stopped only) and grow its disk."""
    vm = vms.get(vm_id)
    form = ResizeForm()
    if not form.validate_on_submit():
        flash_form_errors(form)
        return redirect(url_for("vms.show", vm_id=vm["id"]))
    # the form comes prefilled: the service keeps only what differs from the VM's now
    asked = {"mem": form.mem.data, "vcpus": form.vcpus.data, "disk": form.disk.data}
    changes = {key: value for key, value in asked.items() if value is not None}
    return _act(
        vm["id"],
        lambda: resize.resize(vm["id"], changes, actor(), wait=False),
        f"Resizing VM {vm['id']}.",
    )


@bp.route("/<vm_id>/save-image", methods=["POST"])
def save_image(vm_id):
    """Save a stopped VM as an image (operation image.save)."""
    vm = vms.get(vm_id)
    form = SaveImageForm()
    if not form.validate_on_submit():
        flash_form_errors(form)
        return redirect(url_for("vms.show", vm_id=vm["id"]))
    name, snapshot = form.name.data.strip(), (form.snapshot.data or "").strip() or None
    return _act(
        vm["id"],
        lambda: image_save.save(vm["id"], name, snapshot, actor(), wait=False),
        f"Saving VM {vm['id']} as image {name}.",
    )
