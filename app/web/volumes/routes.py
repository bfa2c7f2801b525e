"""Routes of the volumes blueprint: the list with its create form, a volume's page, and the
actions on one volume (grow, detach, remove), each to its operation's page."""

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for

from ...errors import NubeError
from ...services import images, operations, projects, volumes
from ..helpers import (
    Page,
    actor,
    flash_error,
    flash_form_errors,
    flash_operation,
    to_operation,
)
from .forms import NO_IMAGE, GrowForm, RemoveForm, VolumeForm

bp = Blueprint("volumes", __name__, url_prefix="/volumes")

# A volume form's hidden `back` field: after a refusal, show the page the form was on.
BACK_TO_VM = "vm"


def _fill_new_form(form):
    """The create form's choices: no image or one of the images, the viewer's projects."""
    image_names, _newest = images.choices()
    form.image.choices = [(NO_IMAGE, "None: an empty volume")] + [(n, n) for n in image_names]
    form.project.choices = projects.names_for()


def _create(form):
    """Ask for the volume the form describes: the operation id, or None after flashing why it
    was refused."""
    data = {key: form[key].data for key in volumes.ADD_FIELDS}
    data["name"] = data["name"].strip()
    try:
        op_id = volumes.add(data, actor(), wait=False)
    except NubeError as error:
        flash_error(error)
        return None
    flash_operation(f"Creating volume {data['name']}.", op_id)
    return op_id


@bp.route("/", methods=["GET", "POST"])
def index():
    """The viewer's volumes, filtered, sorted and paged, with the form that creates one."""
    form = VolumeForm()
    _fill_new_form(form)
    if form.validate_on_submit() and (op_id := _create(form)) is not None:
        return redirect(url_for("operations.show", op_id=op_id))
    page = Page(current_app.config["PAGE_SIZE"], "name", volumes.SORT_COLUMNS)
    rows = []
    try:
        page.total = volumes.count(page.query)
        rows = volumes.search(page.query, page.sort, page.descending, page.per_page, page.offset)
    except NubeError as error:
        page.error = str(error)
    return render_template("volumes/index.html", volumes=rows, page=page, form=form)


@bp.route("/<name>")
def show(name):
    """One volume: where the guest finds it, its VM, its actions and its operations."""
    volume = volumes.detail(volumes.get(name))
    return render_template(
        "volumes/show.html",
        volume=volume,
        operations=operations.for_target("volume", volume["name"]),
    )


def _back(name):
    """Where a refused action returns: the VM page the form was on, or the volume's page."""
    if request.form.get("back") == BACK_TO_VM:
        vm_id = volumes.get(name)["vm"]
        if vm_id is not None:
            return redirect(url_for("vms.show", vm_id=vm_id))
    return redirect(url_for("volumes.show", name=name))


def _act(name, action, message):
    """Run one volume action; to its operation on success, back on a refusal."""
    return to_operation(action, message, lambda: _back(name))


@bp.route("/<name>/grow", methods=["POST"])
def grow(name):
    """Grow a volume to the size asked (live when its VM runs)."""
    form = GrowForm()
    if not form.validate_on_submit():
        volumes.get(name)  # another project's volume: 404, as for the other actions
        flash_form_errors(form)
        return _back(name)
    size = form.size.data
    return _act(
        name,
        lambda: volumes.grow(name, size, actor(), wait=False),
        f"Growing volume {name} to {size} GiB.",
    )


@bp.route("/<name>/detach", methods=["POST"])
def detach(name):
    """Detach a volume from its VM (a running guest is asked to let it go)."""
    return _act(
        name, lambda: volumes.detach(name, actor(), wait=False), f"Detaching volume {name}."
    )


@bp.route("/<name>/remove", methods=["POST"])
def remove(name):
    """Remove a volume after the operator typed its name."""
    volume = volumes.get(name)
    form = RemoveForm()
    if not form.validate_on_submit() or form.confirm.data.strip() != volume["name"]:
        flash(f"Type the volume's name ({volume['name']}) to confirm its removal.", "warning")
        return redirect(url_for("volumes.show", name=volume["name"]))
    return _act(
        volume["name"],
        lambda: volumes.remove(volume["name"], actor(), wait=False),
        f"Removing volume {volume['name']} and its file.",
    )
