"""The VM page's snapshot actions: take one; revert to one or delete one after a page that says
what is lost and the snapshot's name typed; each to its operation's page."""

from flask import flash, redirect, render_template, url_for

from ...services import snapshots, vms
from ..helpers import actor, flash_form_errors, to_operation
from .forms import SnapshotConfirmForm, SnapshotForm
from .routes import bp

# action in the URL -> (the service, what the flash says it started)
CONFIRMED = {
    "revert": (snapshots.revert, "Reverting VM {vm} to snapshot {name}."),
    "delete": (snapshots.remove, "Deleting snapshot {name} of VM {vm}."),
}
REVERT, DELETE = {"action": "revert"}, {"action": "delete"}


def _to_vm(vm_id):
    """Back to the VM's page."""
    return redirect(url_for("vms.show", vm_id=vm_id))


@bp.route("/<vm_id>/snapshots", methods=["POST"])
def take_snapshot(vm_id):
    """Snapshot a VM's disk and attached volumes together."""
    vm_id = vms.get(vm_id)["id"]  # another project's VM: 404, as for the other actions
    form = SnapshotForm()
    if not form.validate_on_submit():
        flash_form_errors(form)
        return _to_vm(vm_id)
    name = form.name.data.strip()
    return to_operation(
        lambda: snapshots.take(vm_id, name, actor(), wait=False),
        f"Taking snapshot {name} of VM {vm_id}.",
        lambda: _to_vm(vm_id),
    )


@bp.route("/<vm_id>/snapshots/<name>/revert", methods=["GET", "POST"], defaults=REVERT)
@bp.route("/<vm_id>/snapshots/<name>/delete", methods=["GET", "POST"], defaults=DELETE)
def confirm_snapshot(vm_id, name, action):
    """Revert to or delete a snapshot: the page saying what is lost, then (its name typed)
    the action."""
    vm = vms.get(vm_id)
    snapshot = snapshots.get(vm["id"], name)
    form = SnapshotConfirmForm()
    if form.validate_on_submit():
        if form.confirm.data.strip() == snapshot["name"]:
            service, said = CONFIRMED[action]
            return to_operation(
                lambda: service(vm["id"], snapshot["name"], actor(), wait=False),
                said.format(vm=vm["id"], name=snapshot["name"]),
                lambda: _to_vm(vm["id"]),
            )
        flash(f"Type the snapshot's name ({snapshot['name']}) to confirm.", "warning")
    return render_template(
        "vms/snapshot_confirm.html", vm=vm, snapshot=snapshot, action=action, form=form
    )
