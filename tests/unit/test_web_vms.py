"""The VM pages: list, create, details, start, stop, force off, remove."""

import json
import re
import subprocess

import pytest

from app import core
from app.db import get_db
from app.repositories import vms as vms_repo
from app.services import operations
from tests.conftest import csrf_token

GET_PATHS = ["/vms/", "/vms/new", "/vms/vm1"]
POST_PATHS = [
    "/vms/new",
    "/vms/vm1/start",
    "/vms/vm1/stop",
    "/vms/vm1/force-off",
    "/vms/vm1/remove",
]


@pytest.fixture
def host(app):
    """A ready host on libvirt's test driver; returns its id."""
    with app.app_context():
        added = core.addHost(
            {"address": "127.0.0.1", "user": "root", "prepare": False, "name": "h1"}
        )
    return added["id"]


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


def row_of(html, vm_id):
    """The HTML of one VM's row in the list."""
    match = re.search(rf'<tr data-vm-id="{re.escape(vm_id)}">(.*?)</tr>', html, re.S)
    assert match, f"no row for {vm_id}"
    return match.group(1)


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
    page = operator_client.get("/vms/new").get_data(as_text=True)
    assert '<option value="base.raw">base.raw</option>' in page
    assert "Automatic (placement)" in page
    assert re.search(r'<option value="\d+">h1 \(ready, [\d.]+ (MiB|GiB) free\)</option>', page)
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
    row = row_of(operator_client.get("/vms/").get_data(as_text=True), "web1")
    assert "status-stopped" in row and "base.raw" in row and "64 MiB" in row
    assert f'<a href="/hosts/{host}">h1</a>' in row
    assert 'action="/vms/web1/start"' in row


def test_create_on_a_chosen_host_and_preselection(app, admin_client, host, image):
    page = admin_client.get(f"/vms/new?host={host}").get_data(as_text=True)
    assert f'<option selected value="{host}">' in page
    response = press(
        admin_client,
        "/vms/new",
        {"id": "web2", "image": image, "mem": "32", "vcpus": "1", "host": str(host)},
        page="/vms/new",
    )
    assert response.status_code == 302
    with app.app_context():
        assert core.listVms("id = web2")[0]["host"] == host


def test_create_refusals_stay_on_the_form(app, admin_client, host, image):
    add_vm(app, "vm1", image)
    response = press(
        admin_client,
        "/vms/new",
        {"id": "vm1", "image": image, "mem": "64", "vcpus": "1", "host": ""},
        page="/vms/new",
    )
    assert response.status_code == 200
    assert "a VM named vm1 already exists" in response.get_data(as_text=True)
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
    assert "invalid VM id" in response.get_data(as_text=True)
    assert not list(app.extensions["nube"].storage.vms_dir.glob("*evil*"))


def test_new_without_images_or_hosts(app, admin_client):
    page = admin_client.get("/vms/new").get_data(as_text=True)
    assert "No images yet:" in page and 'href="/images/"' in page
    assert 'id="vm-form"' not in page
    assert 'id="no-hosts"' in page


def test_empty_list_hints_at_hosts(app, admin_client):
    page = admin_client.get("/vms/").get_data(as_text=True)
    assert "No VMs yet:" in page and 'href="/vms/new"' in page
    assert "add a host first" in page


def test_empty_list_with_a_host(app, admin_client, host):
    page = admin_client.get("/vms/").get_data(as_text=True)
    assert "No VMs yet:" in page
    assert "add a host first" not in page


def test_buttons_start_stop_force_off_remove(app, admin_client, host, image):
    add_vm(app, "vm1", image)
    response = press(admin_client, "/vms/vm1/start")
    assert response.status_code == 302
    assert re.fullmatch(r"/operations/\d+", response.headers["Location"])
    row = row_of(admin_client.get("/vms/").get_data(as_text=True), "vm1")
    assert "status-running" in row
    assert 'action="/vms/vm1/stop"' in row and 'action="/vms/vm1/force-off"' in row
    assert 'action="/vms/vm1/start"' not in row
    assert "data-confirm=" in row

    assert press(admin_client, "/vms/vm1/stop").status_code == 302
    row = row_of(admin_client.get("/vms/").get_data(as_text=True), "vm1")
    assert "status-stopped" in row and 'action="/vms/vm1/start"' in row

    press(admin_client, "/vms/vm1/start")
    assert vm_state(app, "vm1") == ("running", None)
    assert press(admin_client, "/vms/vm1/force-off").status_code == 302
    row = row_of(admin_client.get("/vms/").get_data(as_text=True), "vm1")
    assert "status-stopped" in row

    disk = app.extensions["nube"].storage.vms_dir / "vm1.qcow2"
    assert disk.is_file()
    response = press(admin_client, "/vms/vm1/remove", {"confirm": "vm1"}, page="/vms/vm1")
    assert response.status_code == 302
    assert re.fullmatch(r"/operations/\d+", response.headers["Location"])
    assert vm_state(app, "vm1") is None
    assert not disk.exists()
    assert 'data-vm-id="vm1"' not in admin_client.get("/vms/").get_data(as_text=True)
    assert admin_client.get("/vms/vm1").status_code == 404


def test_a_refused_action_goes_back_to_the_vm(app, admin_client, host, image):
    add_vm(app, "vm1", image)
    response = press(admin_client, "/vms/vm1/stop")
    assert response.headers["Location"] == "/vms/vm1"
    page = admin_client.get("/vms/vm1").get_data(as_text=True)
    assert "VM vm1 is stopped: cannot stop it" in page


def test_unknown_vm_is_404(app, admin_client, host):
    assert admin_client.get("/vms/nope").status_code == 404
    assert press(admin_client, "/vms/nope/start").status_code == 404
    assert press(admin_client, "/vms/nope/remove", {"confirm": "nope"}).status_code == 404


def test_remove_needs_the_typed_name(app, admin_client, host, image):
    add_vm(app, "vm1", image)
    response = press(admin_client, "/vms/vm1/remove", {"confirm": "vm2"}, page="/vms/vm1")
    assert response.headers["Location"] == "/vms/vm1"
    assert "Type the VM&#39;s name (vm1)" in admin_client.get("/vms/vm1").get_data(as_text=True)
    assert vm_state(app, "vm1") == ("stopped", None)
    assert (app.extensions["nube"].storage.vms_dir / "vm1.qcow2").is_file()


def test_busy_vm_gets_the_busy_message(app, admin_client, host, image):
    add_vm(app, "vm1", image)
    with app.app_context():
        op_id = operations.for_target("vm", "vm1")[0]["id"]
        assert vms_repo.claim_task(get_db(), "vm1", "starting", op_id)
    row = row_of(admin_client.get("/vms/").get_data(as_text=True), "vm1")
    assert "spinner-border" in row and "starting" in row
    assert "<form" not in row  # no buttons while a task runs
    response = press(admin_client, "/vms/vm1/start")
    assert response.headers["Location"] == "/vms/vm1"
    page = admin_client.get("/vms/vm1").get_data(as_text=True)
    assert "busy: VM vm1 is starting" in page
    assert f'<a href="/operations/{op_id}">See operation {op_id}</a>' in page
    with app.app_context():
        assert len(operations.for_target("vm", "vm1")) == 1


def test_show_page(app, admin_client, host, image):
    add_vm(app, "vm1", image, start=True)
    page = admin_client.get("/vms/vm1").get_data(as_text=True)
    assert f'<a href="/hosts/{host}">h1</a>' in page
    assert "base.raw" in page and "64 MiB" in page and "by api" in page
    assert "vms/vm1.qcow2" in page
    assert str(app.extensions["nube"].storage.vms_dir / "vm1.qcow2") in page
    assert "its domain on h1 and its disk" in page
    assert "vm.create" in page and "vm.start" in page
    assert re.search(r'action="/vms/vm1/force-off" class="d-inline" data-confirm="[^"]+"', page)
    assert 'name="confirm"' in page and 'action="/vms/vm1/remove"' in page


def test_bad_filter_shows_the_error_inline(app, admin_client, host, image):
    add_vm(app, "vm1", image)
    response = admin_client.get("/vms/", query_string={"q": "mem >>> 3"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'id="filter-error"' in page and "position" in page
    assert "is-invalid" in page
    response = admin_client.get("/vms/", query_string={"q": "nosuch = 1"})
    assert response.status_code == 200
    assert "unknown column" in response.get_data(as_text=True)


def test_filter_selects_rows(app, admin_client, host, image):
    add_vm(app, "small", image, mem=32)
    add_vm(app, "big", image, mem=600, start=True)
    page = admin_client.get("/vms/", query_string={"q": "state = running AND mem >= 512"}).get_data(
        as_text=True
    )
    assert 'data-vm-id="big"' in page and 'data-vm-id="small"' not in page
    page = admin_client.get("/vms/", query_string={"q": "mem > 100000"}).get_data(as_text=True)
    assert "No VM matches this filter." in page


def test_paging_and_sorting(app, admin_client, host, image):
    app.config["PAGE_SIZE"] = 2
    for vm_id, mem in (("a1", 48), ("b2", 16), ("c3", 32)):
        add_vm(app, vm_id, image, mem=mem)
    page = admin_client.get("/vms/").get_data(as_text=True)
    assert re.findall(r'data-vm-id="([^"]+)"', page) == ["a1", "b2"]
    assert "Page 1 of 2 (3)" in page
    next_link = re.search(r'<a class="page-link" href="\?([^"]*)">Next</a>', page).group(1)
    page = admin_client.get("/vms/?" + next_link.replace("&amp;", "&")).get_data(as_text=True)
    assert re.findall(r'data-vm-id="([^"]+)"', page) == ["c3"]
    assert "Page 2 of 2 (3)" in page

    page = admin_client.get("/vms/?sort=mem").get_data(as_text=True)
    assert re.findall(r'data-vm-id="([^"]+)"', page) == ["b2", "c3"]
    desc_link = re.search(r'href="\?([^"]*)">\s*Memory ▲', page).group(1).replace("&amp;", "&")
    assert "dir=desc" in desc_link
    page = admin_client.get("/vms/?" + desc_link).get_data(as_text=True)
    assert re.findall(r'data-vm-id="([^"]+)"', page) == ["a1", "c3"]
    # A sort column outside the whitelist falls back to the default.
    page = admin_client.get("/vms/?sort=mem;drop").get_data(as_text=True)
    assert re.findall(r'data-vm-id="([^"]+)"', page) == ["a1", "b2"]
    # Paging with a filter keeps the filter in the links.
    page = admin_client.get("/vms/", query_string={"q": "mem >= 16"}).get_data(as_text=True)
    assert "q=mem" in re.search(r'href="\?([^"]*)">Next', page).group(1)
