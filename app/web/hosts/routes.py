"""Routes of the hosts blueprint."""

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for

from ...errors import NubeError
from ...services import access, charts, hosts, operations, vms
from ...services.retry import FORM_AGAIN_FIELDS
from ..helpers import (
    Page,
    actor,
    admin_required,
    flash_error,
    flash_form_errors,
    flash_operation,
)
from .forms import AcceptKeyForm, ConfirmForm, DrainForm, HostEditForm, HostForm

bp = Blueprint("hosts", __name__, url_prefix="/hosts")


@bp.before_request
def hosts_are_for_operators():
    """Members see no host: every page here is forbidden to them."""
    access.require("hosts")


@bp.route("/")
def index():
    """Hosts, filtered, sorted and paged."""
    page = Page(current_app.config["PAGE_SIZE"], "name", hosts.SORT_COLUMNS)
    rows = []
    try:
        page.total = hosts.count(page.query)
        rows = hosts.search(page.query, page.sort, page.descending, page.per_page, page.offset)
    except NubeError as error:
        page.error = str(error)
    return render_template("hosts/index.html", hosts=rows, page=page)


@bp.route("/new", methods=["GET", "POST"])
def new():
    """Register a host."""
    form = HostForm()
    if request.method == "GET":
        form.share.data = hosts.default_share()
        for key in FORM_AGAIN_FIELDS:  # a failed add's "Edit and try again" fills the form
            if request.args.get(key):
                form[key].data = request.args[key]
    if form.validate_on_submit():
        data = {
            key: form[key].data
            for key in (
                "address",
                "name",
                "user",
                "password",
                "share",
                "network",
                "prepare",
                "data_address",
            )
        }
        try:
            op_id = hosts.add(data, actor(), wait=False)
        except NubeError as error:
            flash_error(error)
        else:
            flash_operation(f"Adding host {data['name'] or data['address']}.", op_id)
            return redirect(url_for("operations.show", op_id=op_id))
    return render_template("hosts/new.html", form=form)


@bp.route("/<int:host_id>")
def show(host_id):
    """One host with its VMs and recent operations."""
    host = hosts.detail(hosts.get(host_id))
    return render_template(
        "hosts/show.html",
        host=host,
        vms=vms.search(f"host = {host_id}"),
        operations=operations.for_target("host", host_id),
        history=charts.host_history(host),
        confirm=ConfirmForm(),
        accept_key=AcceptKeyForm(),
        drain=DrainForm(),
    )


@bp.route("/<int:host_id>/accept-key", methods=["POST"])
@admin_required
def accept_key(host_id):
    """Record the SSH key a reinstalled host offers, once an admin confirmed its fingerprint."""
    host = hosts.get(host_id)
    form = AcceptKeyForm()
    if form.validate_on_submit():
        try:
            hosts.accept_host_key(host_id, form.fingerprint.data, actor())
        except NubeError as error:
            flash_error(error)
        else:
            flash(f"New SSH host key of {host['name']} accepted.", "success")
    else:
        flash_form_errors(form)  # the hosts service's own check and message
    return redirect(url_for("hosts.show", host_id=host_id))


@bp.route("/<int:host_id>/edit", methods=["GET", "POST"])
def edit(host_id):
    """Change a host's fields."""
    host = hosts.detail(hosts.get(host_id))
    form = HostEditForm(data=host)
    if host["state"] not in hosts.OPERATOR_STATES:
        form.state.choices = [host["state"]]
    if form.validate_on_submit():
        data = {
            key: form[key].data
            for key in ("name", "user", "network", "address", "share", "state", "data_address")
        }
        if form.password.data:
            data["password"] = form.password.data
        try:
            op_id = hosts.update(host_id, data, actor(), wait=False)
        except NubeError as error:
            flash_error(error)
        else:
            if op_id:
                flash_operation(hosts.update_message(data["name"], op_id), op_id)
                return redirect(url_for("operations.show", op_id=op_id))
            flash(f"Host {data['name']} saved.", "success")
            return redirect(url_for("hosts.show", host_id=host_id))
    return render_template("hosts/edit.html", form=form, host=host)


@bp.route("/<int:host_id>/remove", methods=["POST"])
def remove(host_id):
    """Remove a host after the operator typed its name."""
    host = hosts.get(host_id)
    form = ConfirmForm()
    if not form.validate_on_submit() or form.confirm.data.strip() != host["name"]:
        flash(f"Type the host's name ({host['name']}) to confirm its removal.", "warning")
        return redirect(url_for("hosts.show", host_id=host_id))
    drain = bool(form.drain.data)
    try:
        op_id = hosts.remove(host_id, actor(), wait=False, drain=drain)
    except NubeError as error:
        flash_error(error)
        return redirect(url_for("hosts.show", host_id=host_id))
    what = "moving its VMs away first" if drain else "and its VMs"
    flash_operation(f"Removing host {host['name']} {what}.", op_id)
    return redirect(url_for("operations.show", op_id=op_id))


@bp.route("/<int:host_id>/ready", methods=["POST"])
def back_to_ready(host_id):
    """Put a host in maintenance or disabled back to ready: placement uses it again."""
    host = hosts.get(host_id)
    if not DrainForm().validate_on_submit():
        flash("The form expired: try again.", "warning")
    else:
        try:
            hosts.update(host_id, {"state": "ready"}, actor(), wait=False)
        except NubeError as error:
            flash_error(error)
        else:
            flash(f"Host {host['name']} is ready: new VMs may be placed on it.", "success")
    return redirect(url_for("hosts.show", host_id=host_id))


@bp.route("/<int:host_id>/drain", methods=["POST"])
def drain(host_id):
    """Put a host in maintenance and move its VMs to other hosts."""
    host = hosts.get(host_id)
    if not DrainForm().validate_on_submit():
        flash("The form expired: try again.", "warning")
        return redirect(url_for("hosts.show", host_id=host_id))
    try:
        op_id = hosts.drain(host_id, actor(), wait=False)
    except NubeError as error:
        flash_error(error)
        return redirect(url_for("hosts.show", host_id=host_id))
    flash_operation(f"Draining host {host['name']}: its VMs move to other hosts.", op_id)
    return redirect(url_for("operations.show", op_id=op_id))
