"""Routes of the networks blueprint: the list with its filter and create form, a network's page
with its rules and the addresses in use, the change of its rules (to the operation that brings
them to the hosts), and its removal after a page that says what goes."""

from flask import Blueprint, current_app, flash, redirect, render_template, url_for

from ...errors import Forbidden, NotFound, NubeError
from ...services import access, networks, projects
from ..helpers import Page, actor, flash_error, flash_operation
from .forms import TYPE_CHOICES, NetworkForm, RemoveForm, RulesForm, rules_text

bp = Blueprint("networks", __name__, url_prefix="/networks")
SORT_COLUMNS = ("name",)  # the service lists by name


def _fill_new_form(form):
    """The create form's choices: the viewer's projects; a bridge only for those who manage
    hosts (it puts VMs on the hosts' own LAN)."""
    form.project.choices = projects.names_for()
    form.type.choices = list(TYPE_CHOICES)
    if not access.current().may("hosts"):
        form.type.choices = [choice for choice in TYPE_CHOICES if choice[0] != "bridge"]
        del form.bridge


def _create(form):
    """Define the network the form describes: its name, or None after flashing why not."""
    data = {key: form[key].data for key in networks.ADD_FIELDS if key in form}
    data["name"] = data["name"].strip()
    try:
        network = networks.add(data, actor())
    except NubeError as error:
        flash_error(error)
        return None
    flash(f"Network {network['name']} created ({network['cidr']}).", "success")
    return network["name"]


@bp.route("/", methods=["GET", "POST"])
def index():
    """The networks the viewer sees, filtered, with the form that defines one."""
    form = NetworkForm()
    _fill_new_form(form)
    if form.validate_on_submit() and (name := _create(form)) is not None:
        return redirect(url_for("networks.show", name=name))
    page = Page(current_app.config["PAGE_SIZE"], "name", SORT_COLUMNS)  # one page: no pager
    rows = []
    try:
        rows = networks.search(page.query)
    except NubeError as error:
        page.error = str(error)
    page.total = len(rows)
    return render_template("networks/index.html", networks=rows, page=page, form=form)


def _show(network, form=None):
    """A network's page; its rules form (for those who may change them) pre-filled with its
    rules, or as posted when refused."""
    if form is None and networks.may_set_rules(network):
        form = RulesForm(formdata=None, rules=rules_text(network["rules"]))
    return render_template(
        "networks/show.html",
        network=network,
        addresses=networks.addresses(network["name"]),
        rules_form=form,
    )


@bp.route("/<name>")
def show(name):
    """One network: its fields, its rules and each address in use."""
    return _show(networks.get(name))


@bp.route("/<name>/rules", methods=["POST"])
def rules(name):
    """Replace a network's rules: to the operation that brings them to its hosts; refused,
    the page again with the rules as typed and why."""
    network = networks.get(name)
    if not networks.may_set_rules(network):
        access.require("hosts")  # the 403 page, before a bad form could show the form
    form = RulesForm()
    if not form.validate_on_submit():
        return _show(network, form)
    try:
        op_id = networks.set_rules(network["name"], form.rules.data, actor(), wait=False)
    except (NotFound, Forbidden):
        raise  # the error pages: another project's network, or a role that may not
    except NubeError as error:
        flash_error(error)
        return _show(network, form)
    flash_operation(f"Applying the rules of network {network['name']}.", op_id)
    return redirect(url_for("operations.show", op_id=op_id))


@bp.route("/<name>/remove", methods=["GET", "POST"])
def remove(name):
    """Remove a network: the page saying what goes (or which VMs keep it), then, its name
    typed, the removal."""
    network = networks.get(name)
    form = RemoveForm()
    if form.validate_on_submit():
        if form.confirm.data.strip() == network["name"]:
            try:
                networks.remove(network["name"], actor())
            except NubeError as error:
                flash_error(error)
                return redirect(url_for("networks.remove", name=network["name"]))
            flash(f"Network {network['name']} removed.", "success")
            return redirect(url_for("networks.index"))
        flash(f"Type the network's name ({network['name']}) to confirm its removal.", "warning")
    users = sorted({address["vm"] for address in networks.addresses(network["name"])})
    return render_template("networks/remove.html", network=network, users=users, form=form)
