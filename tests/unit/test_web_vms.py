"""The VM pages: list, create, details, start, stop, force off, remove."""

import json
import os
import re
import subprocess
import time

import pytest

from app import core
from app.db import get_db
from app.repositories import vms as vms_repo
from app.services import operations
from tests.conftest import csrf_token
from tests.factories import gen_image
from tests.html import page

GET_PATHS = ["/vms/", "/vms/new", "/vms/vm1"]
POST_PATHS = [
    "/vms/new",
    "/vms/vm1/start",
    "/vms/vm1/stop",
    "/vms/vm1/force-off",
    "/vms/vm1/remove",
]


def add_vm(app, vm_id, image, mem=64, start=False):
    """Create a VM through the core API."""
    with app.app_context():
        core.addVm({"id": vm_id, "image": image, "mem": mem})
        if start:
            core.startVm(vm_id)


def vm_state(app, vm_id):
    """The VM's (state, task) in the database, or None once it is gone."""
    with app.app_context():
        rows = core.listVms(f"id = {vm_id}")
    return (rows[0]["state"], rows[0]["task"]) if rows else None


def row_of(client, vm_id, path="/vms/"):
    """One VM's row (<tr data-vm-id>) in the list."""
    return page(client.get(path)).one("tr", data_vm_id=vm_id)


def listed(doc):
    """The VM ids of a list page's rows, in order."""
    return [row["data-vm-id"] for row in doc.rows(data_vm_id=True)]


def has_badge(element, state):
    """Whether an element shows a state badge (class status-STATE) reading that state."""
    return element.has_element("span", class_=f"badge status-{state}", text=state)


def press(client, path, data=None, page="/vms/"):
    """Post a button's form with the CSRF token a page carries."""
    return client.post(path, data={"csrf_token": csrf_token(client, page), **(data or {})})


def test_every_route_needs_login(app, host, image):
    add_vm(app, "vm1", image)
    client = app.test_client()
    for path in GET_PATHS:
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"], path
    token = csrf_token(client, "/login")  # a valid token, so only the login check is left
    for path in POST_PATHS:
        response = client.post(path, data={"csrf_token": token, "confirm": "vm1"})
        assert response.status_code == 302 and "/login" in response.headers["Location"], path
    assert vm_state(app, "vm1") == ("stopped", None)


def test_every_post_needs_a_csrf_token(app, admin_client, host, image):
    add_vm(app, "vm1", image, start=True)
    for path in POST_PATHS:
        response = admin_client.post(
            path, data={"id": "vm2", "image": image, "mem": "64", "confirm": "vm1"}
        )
        assert response.status_code == 400, path
    assert vm_state(app, "vm1") == ("running", None)
    assert vm_state(app, "vm2") is None


def test_get_changes_nothing(app, admin_client, host, image):
    add_vm(app, "vm1", image)
    for path in ("/vms/vm1/start", "/vms/vm1/remove", "/vms/vm1/force-off"):
        assert admin_client.get(path).status_code == 405
    assert vm_state(app, "vm1") == ("stopped", None)


def test_create_through_the_form_makes_an_overlay(app, operator_client, host, image):
    form = page(operator_client.get("/vms/new")).by_id("vm-form")
    assert form.field("image").one("option", value="base.raw").text == "base.raw"
    hosts = form.field("host")
    assert hosts.one("option", text="Automatic (placement)")
    free = re.compile(r"h1 \(ready, [\d.]+ (MiB|GiB) free, \d+ vCPUs free\)")
    assert hosts.one("option", value=str.isdigit, text=free.fullmatch).has("selected") is False
    response = press(
        operator_client,
        "/vms/new",
        {"id": "web1", "image": image, "mem": "64", "vcpus": "2", "host": ""},
        page="/vms/new",
    )
    assert response.status_code == 302
    assert re.fullmatch(r"/operations/\d+", response.headers["Location"])
    disk = app.extensions["nube"].storage.vms_dir / "web1.qcow2"
    assert disk.is_file()
    info = json.loads(
        subprocess.run(
            ["qemu-img", "info", "--output=json", str(disk)],
            capture_output=True,
            check=True,
            text=True,
        ).stdout
    )
    assert info["format"] == "qcow2"
    assert info["backing-filename"] == "../images/base.raw"
    row = row_of(operator_client, "web1")
    assert has_badge(row, "stopped") and "base.raw" in row.cells() and "64 MiB" in row.cells()
    assert row.link(f"/hosts/{host['id']}").text == "h1"
    assert row.form("/vms/web1/start").button().text == "Start"


def test_create_on_a_chosen_host_and_preselection(app, admin_client, host, image):
    hosts = page(admin_client.get(f"/vms/new?host={host['id']}")).by_id("vm-form").field("host")
    assert [option["value"] for option in hosts.options() if option.has("selected")] == [
        str(host["id"])
    ]
    response = press(
        admin_client,
        "/vms/new",
        {"id": "web2", "image": image, "mem": "32", "vcpus": "1", "host": str(host["id"])},
        page="/vms/new",
    )
    assert response.status_code == 302
    with app.app_context():
        assert core.listVms("id = web2")[0]["host"] == host["id"]


def test_create_refusals_stay_on_the_form(app, admin_client, host, image):
    add_vm(app, "vm1", image)
    response = press(
        admin_client,
        "/vms/new",
        {"id": "vm1", "image": image, "mem": "64", "vcpus": "1", "host": ""},
        page="/vms/new",
    )
    assert response.status_code == 200
    assert page(response).alert("a VM named vm1 already exists", "danger")
    response = press(
        admin_client,
        "/vms/new",
        {"id": "tiny", "image": image, "mem": "8", "vcpus": "1", "host": ""},
        page="/vms/new",
    )
    assert response.status_code == 200
    assert vm_state(app, "tiny") is None
    response = press(
        admin_client,
        "/vms/new",
        {"id": "../evil", "image": image, "mem": "64", "vcpus": "1", "host": ""},
        page="/vms/new",
    )
    assert response.status_code == 200
    assert "invalid VM id" in " ".join(page(response).field_errors())
    assert not list(app.extensions["nube"].storage.vms_dir.glob("*evil*"))


def test_new_without_images_or_hosts(app, admin_client):
    doc = page(admin_client.get("/vms/new"))
    no_images = doc.by_id("no-images")
    assert no_images.text.startswith("No images yet:") and no_images.link("/images/")
    assert not doc.has_element(id="vm-form")
    assert doc.by_id("no-hosts")


def test_empty_list_hints_at_hosts(app, admin_client):
    empty = page(admin_client.get("/vms/")).by_id("empty-state")
    assert empty.text.startswith("No VMs yet:") and empty.link("/vms/new")
    assert empty.link("/hosts/new").text == "add a host first"


def test_empty_list_with_a_host(app, admin_client, host):
    empty = page(admin_client.get("/vms/")).by_id("empty-state")
    assert empty.text.startswith("No VMs yet:")
    assert "add a host first" not in empty.text and not empty.links("/hosts/new")


def test_buttons_start_stop_force_off_remove(app, admin_client, host, image):
    add_vm(app, "vm1", image)
    response = press(admin_client, "/vms/vm1/start")
    assert response.status_code == 302
    assert re.fullmatch(r"/operations/\d+", response.headers["Location"])
    row = row_of(admin_client, "vm1")
    assert has_badge(row, "running")
    assert row.actions() == ["/vms/vm1/stop", "/vms/vm1/force-off"]  # no Start
    assert row.labels() == ["Stop", "Force off"]
    assert row.form("/vms/vm1/force-off").get("data-confirm")

    assert press(admin_client, "/vms/vm1/stop").status_code == 302
    row = row_of(admin_client, "vm1")
    assert has_badge(row, "stopped") and row.form("/vms/vm1/start").button().text == "Start"

    press(admin_client, "/vms/vm1/start")
    assert vm_state(app, "vm1") == ("running", None)
    assert press(admin_client, "/vms/vm1/force-off").status_code == 302
    assert has_badge(row_of(admin_client, "vm1"), "stopped")

    disk = app.extensions["nube"].storage.vms_dir / "vm1.qcow2"
    assert disk.is_file()
    response = press(admin_client, "/vms/vm1/remove", {"confirm": "vm1"}, page="/vms/vm1")
    assert response.status_code == 302
    assert re.fullmatch(r"/operations/\d+", response.headers["Location"])
    assert vm_state(app, "vm1") is None
    assert not disk.exists()
    assert not page(admin_client.get("/vms/")).has_element(data_vm_id="vm1")
    assert admin_client.get("/vms/vm1").status_code == 404


def test_a_refused_action_goes_back_to_the_vm(app, admin_client, host, image):
    add_vm(app, "vm1", image)
    response = press(admin_client, "/vms/vm1/stop")
    assert response.headers["Location"] == "/vms/vm1"
    assert page(admin_client.get("/vms/vm1")).alert("VM vm1 is stopped: cannot stop it", "danger")


def test_unknown_vm_is_404(app, admin_client, host):
    assert admin_client.get("/vms/nope").status_code == 404
    assert press(admin_client, "/vms/nope/start").status_code == 404
    assert press(admin_client, "/vms/nope/remove", {"confirm": "nope"}).status_code == 404


def test_remove_needs_the_typed_name(app, admin_client, host, image):
    add_vm(app, "vm1", image)
    response = press(admin_client, "/vms/vm1/remove", {"confirm": "vm2"}, page="/vms/vm1")
    assert response.headers["Location"] == "/vms/vm1"
    assert page(admin_client.get("/vms/vm1")).alert("Type the VM's name (vm1)", "warning")
    assert vm_state(app, "vm1") == ("stopped", None)
    assert (app.extensions["nube"].storage.vms_dir / "vm1.qcow2").is_file()


def test_busy_vm_gets_the_busy_message(app, admin_client, host, image):
    add_vm(app, "vm1", image)
    with app.app_context():
        op_id = operations.for_target("vm", "vm1")[0]["id"]
        assert vms_repo.claim_task(get_db(), "vm1", "starting", op_id)
    row = row_of(admin_client, "vm1")
    assert row.has_element(class_="spinner-border", role="status")
    assert row.one("td", data_actions=True).text == "starting"
    assert not row.forms() and not row.buttons()  # no buttons while a task runs
    response = press(admin_client, "/vms/vm1/start")
    assert response.headers["Location"] == "/vms/vm1"
    busy = page(admin_client.get("/vms/vm1")).find(role="alert", class_="alert-warning")
    assert busy and "busy: VM vm1 is starting" in busy.text
    assert busy.link(f"/operations/{op_id}").text == f"See operation {op_id}"
    with app.app_context():
        assert len(operations.for_target("vm", "vm1")) == 1


def test_show_page(app, admin_client, host, image):
    add_vm(app, "vm1", image, start=True)
    doc = page(admin_client.get("/vms/vm1"))
    details = doc.details()
    assert details["Host"].link(f"/hosts/{host['id']}").text == "h1"
    assert details["Image"].text == "base.raw" and details["Memory"].text == "64 MiB"
    assert details["Created"].text.endswith("by api")
    disk = doc.by_id("disk-path").text
    assert disk.startswith(str(app.extensions["nube"].storage.vms_dir / "vm1.qcow2"))
    remove = doc.by_id("remove-form")
    assert remove["action"] == "/vms/vm1/remove" and remove.field("confirm")
    card = remove.ancestor(class_="card-body")
    assert "its domain on h1 and its disk vms/vm1.qcow2" in card.text
    assert card.one("code").text == "vms/vm1.qcow2"
    kinds = [a.text.split()[1] for a in doc.by_id("vm-operations").links()]
    assert "vm.create" in kinds and "vm.start" in kinds
    actions = doc.by_id("vm-actions")
    force_off = actions.form("/vms/vm1/force-off", class_="d-inline")
    assert force_off.get("data-confirm")


def test_bad_filter_shows_the_error_inline(app, admin_client, host, image):
    add_vm(app, "vm1", image)
    response = admin_client.get("/vms/", query_string={"q": "mem >>> 3"})
    assert response.status_code == 200
    search = page(response).one("form", role="search")
    assert "position" in search.by_id("filter-error").text
    assert "is-invalid" in search.field("q").classes
    response = admin_client.get("/vms/", query_string={"q": "nosuch = 1"})
    assert response.status_code == 200
    assert "unknown column" in page(response).by_id("filter-error").text


def test_filter_selects_rows(app, admin_client, host, image):
    add_vm(app, "small", image, mem=32)
    add_vm(app, "big", image, mem=600, start=True)
    doc = page(admin_client.get("/vms/", query_string={"q": "state = running AND mem >= 512"}))
    assert listed(doc) == ["big"]
    doc = page(admin_client.get("/vms/", query_string={"q": "mem > 100000"}))
    assert listed(doc) == [] and doc.has_element("p", text="No VM matches this filter.")


def test_paging_and_sorting(app, admin_client, host, image):
    app.config["PAGE_SIZE"] = 2
    for vm_id, mem in (("a1", 48), ("b2", 16), ("c3", 32)):
        add_vm(app, vm_id, image, mem=mem)
    doc = page(admin_client.get("/vms/"))
    assert listed(doc) == ["a1", "b2"]
    assert doc.pager().one("span", class_="page-link").text == "Page 1 of 2 (3)"
    doc = page(admin_client.get("/vms/" + doc.pager().one("a", text="Next")["href"]))
    assert listed(doc) == ["c3"]
    assert doc.pager().one("span", class_="page-link").text == "Page 2 of 2 (3)"

    doc = page(admin_client.get("/vms/?sort=mem"))
    assert listed(doc) == ["b2", "c3"]
    desc_link = doc.by_id("vms-table").one("a", text="Memory ▲")["href"]
    assert "dir=desc" in desc_link
    assert listed(page(admin_client.get("/vms/" + desc_link))) == ["a1", "c3"]
    # A sort column outside the whitelist falls back to the default.
    assert listed(page(admin_client.get("/vms/?sort=mem;drop"))) == ["a1", "b2"]
    # Paging with a filter keeps the filter in the links.
    doc = page(admin_client.get("/vms/", query_string={"q": "mem >= 16"}))
    assert "q=mem" in doc.pager().one("a", text="Next")["href"]


def test_the_create_form_proposes_the_newest_image(app, operator_client, image):
    for name, age in (("zz-old.qcow2", 3600), ("newest.qcow2", 0), ("aa-older.raw", 7200)):
        path = gen_image(app, name, fmt="qcow2" if name.endswith("qcow2") else "raw")
        stamp = time.time() - age
        os.utime(app.extensions["nube"].storage.images_dir / path, (stamp, stamp))
    options = page(operator_client.get("/vms/new")).by_id("vm-form").field("image").options()
    assert [option["value"] for option in options] == [
        "aa-older.raw",
        "base.raw",
        "newest.qcow2",
        "zz-old.qcow2",
    ]
    assert [option["value"] for option in options if option.has("selected")] == ["newest.qcow2"]


def test_the_filter_box_takes_a_bare_word_and_a_host_by_name(app, admin_client, host, image):
    add_vm(app, "web1", image, start=True)
    add_vm(app, "db1", image)

    def shown(query):
        doc = page(admin_client.get("/vms/", query_string={"q": query}))
        return sorted(row["data-vm-id"] for row in doc.rows(data_vm_id=True))

    assert shown("web1") == ["web1"]
    assert shown("running") == ["web1"]
    assert shown("WEB") == ["web1"]
    assert shown("host = h1") == ["db1", "web1"]
    assert shown(f"host = {host['id']} AND stopped") == ["db1"]
    assert shown("host = nosuch") == []


def test_vcpus_beyond_the_overcommit_are_refused_and_the_form_shows_them_free(
    app, admin_client, host, image
):
    app.config["CPU_OVERCOMMIT"] = 1.0
    with app.app_context():
        cpus = core.listHosts()[0]["cpus"]
    options = page(admin_client.get("/vms/new")).by_id("vm-form").field("host").options()
    assert any(o.text.endswith(f", {cpus} vCPUs free)") for o in options)
    with app.app_context():
        core.addVm({"id": "big", "image": image, "mem": 32, "vcpus": cpus})
        with pytest.raises(core.InvalidInput, match=f"0 vCPUs free of {cpus} CPUs"):
            core.addVm({"id": "one-more", "image": image, "mem": 32})
        assert [vm["id"] for vm in core.listVms()] == ["big"]


def test_at_phone_width_the_vm_list_keeps_name_state_memory_and_actions(
    app, admin_client, host, image
):
    add_vm(app, "vm1", image)
    doc = page(admin_client.get("/vms/"))
    head = doc.by_id("vms-table").one("thead")
    shown = [th.text for th in head.find_all("th") if "d-none" not in th.classes]
    assert shown == ["Name ▲", "State", "Memory", "Actions"]
    row = doc.one("tr", data_vm_id="vm1")
    cells = [td for td in row.find_all("td") if "d-none" not in td.classes]
    assert len(cells) == 4 and cells[3].has("data-actions")
    assert doc.by_id("main").tag == "main"
    assert doc.one("a", text="Skip to the main content")["href"] == "#main"
