"""The live pages in a real browser, on a server with no lab hosts: the test writes the rows
as a worker (or the monitor) would, and the pages follow them in place: an operation's
progress as the server formats it ({percent, text}) and its log on the operation page and the
overview, and a state badge on the VM and host lists. No page may raise a script error."""

import re

import pytest
from playwright.sync_api import expect

from app.db import get_db
from app.repositories import hosts as hosts_repo
from app.repositories import operations as ops_repo
from app.repositories import projects as projects_repo
from app.repositories import vms as vms_repo
from app.services import charts, operation_view
from tests.browser.conftest import ADMIN, login, script_errors
from tests.factories import gen_operation
from tests.processes import app_for

pytestmark = pytest.mark.browser

POLL_TIMEOUT = 15_000  # ms: the lists poll every 3 s, the operation page every second


@pytest.fixture(scope="module")
def lab_hosts():
    """No lab hosts: nothing here reaches a host."""
    return []


@pytest.fixture(scope="module")
def nube_settings():
    """Nothing to prepare on the controller either: no playbook runs."""
    return {"NUBE_CONTROLLER_PREPARE": "0"}


def _progress(conn, op_id, done, total):
    """Record an operation's progress as a worker does; what the server shows for it."""
    ops_repo.set_progress(conn, op_id, done, total)
    return operation_view.public(ops_repo.get(conn, op_id))["progress"]


def _expect_progress(bar, text, progress):
    """A progress bar and its text show the server's {percent, text}."""
    expect(text).to_have_text(progress["text"], timeout=POLL_TIMEOUT)
    width = re.compile(rf"^width: {progress['percent']}%;?$")  # as rendered, or as set
    expect(bar.locator(".progress-bar")).to_have_attribute("style", width)
    expect(bar).to_have_attribute("aria-valuenow", str(progress["percent"]))


def test_an_operation_page_follows_progress_and_log(page, nube):
    errors = script_errors(page)
    login(page, *ADMIN)
    app = app_for(nube["env"])
    with app.app_context():
        conn = get_db()
        # another machine's worker, beating: the monitor's recovery leaves it alone
        op_id = gen_operation(conn, "image.build", "image:deb", worker="elsewhere:1")
        first = _progress(conn, op_id, 1, 4)
        assert first == {"percent": 25, "text": "1 of 4 tasks"}
        page.goto(f"/operations/{op_id}")
        bar = page.locator("#op-progress")
        text = page.locator('#op-progress + [data-slot="progress"]')
        _expect_progress(bar, text, first)
        log = page.locator("#op-log")
        ops_repo.append_log(conn, op_id, "TASK [debootstrap]")
        expect(log).to_contain_text("TASK [debootstrap]", timeout=POLL_TIMEOUT)
        _expect_progress(bar, text, _progress(conn, op_id, 3, 4))
        ops_repo.append_log(conn, op_id, "disk too small", level="error")
        expect(log.locator(".line.error")).to_contain_text("disk too small", timeout=POLL_TIMEOUT)
        assert ops_repo.finish(conn, op_id, "failed", error="disk too small")
        expect(page.locator("#op-status .badge")).to_have_text("failed", timeout=POLL_TIMEOUT)
        expect(page.locator("#op-error")).to_have_text("disk too small")
        expect(text).to_have_text("3 of 4 tasks")  # where it stopped
        # coloured by its status, as the server renders an ended one
        expect(bar.locator(".progress-bar")).to_have_class(re.compile(r"^progress-bar bg-\w+$"))
        expect(page.locator("#op-finished")).not_to_have_text("-")
    assert "TASK [debootstrap]" in log.inner_text()
    assert errors == []


def test_the_overview_shows_the_servers_progress_as_it_changes(page, nube):
    errors = script_errors(page)
    login(page, *ADMIN)
    expect(page.locator("h1")).to_have_text("Overview")
    app = app_for(nube["env"])
    with app.app_context():
        conn = get_db()
        op_id = gen_operation(conn, "vm.create", "vm:web7", worker="elsewhere:1")
        item = page.locator(f'#live-operations [data-op-id="{op_id}"]')
        text = item.locator('[data-slot="progress"]')
        # counting nothing yet: a full striped bar saying what it does
        working = charts.operation_progress({"status": "running"})
        expect(text).to_have_text(working["text"], timeout=POLL_TIMEOUT)
        expect(item.locator(".progress-bar")).to_have_class(
            "progress-bar progress-bar-striped progress-bar-animated"
        )
        for done in (1, 2):
            _expect_progress(item.locator(".progress"), text, _progress(conn, op_id, done, 5))
        expect(item.locator(".progress-bar")).to_have_class("progress-bar")
        row = page.locator(f'#recent-operations tr[data-operation-id="{op_id}"]')
        expect(row.locator("td").nth(4)).to_have_text("2 of 5 tasks", timeout=POLL_TIMEOUT)
    assert errors == []


def test_the_vm_and_host_lists_update_a_state_badge_in_place(page, nube):
    errors = script_errors(page)
    login(page, *ADMIN)
    app = app_for(nube["env"])
    with app.app_context():
        conn = get_db()
        # a host being prepared: the monitor leaves it (and its VM) to its operation
        host_id = hosts_repo.insert(
            conn,
            name="quiet",
            address="192.0.2.10",
            user="root",
            password_enc=None,
            state="preparing",
            share="nfs",
            network="default",
        )
        vms_repo.insert(
            conn,
            vm_id="quiet1",
            host_id=host_id,
            image="base.raw",
            mem=64,
            vcpus=1,
            state="stopped",
            created_by="admin",
            project_id=projects_repo.by_name(conn, "default")["id"],
        )
        page.goto("/vms/")
        badge = page.locator('tr[data-vm-id="quiet1"] [data-field="state"] .badge')
        expect(badge).to_have_text("stopped")
        badge.evaluate("element => { element.dataset.marker = 'same'; }")
        vms_repo.set_state(conn, "quiet1", "running")
        expect(badge).to_have_text("running", timeout=POLL_TIMEOUT)
        expect(badge).to_have_class(re.compile(r"\bstatus-running\b"))
        # the same element, changed in place (no reload, no re-render)
        assert badge.evaluate("element => element.dataset.marker") == "same"

        page.goto("/hosts/")
        badge = page.locator(f'tr[data-host-id="{host_id}"] [data-field="state"] .badge')
        expect(badge).to_have_text("preparing")
        badge.evaluate("element => { element.dataset.marker = 'same'; }")
        hosts_repo.update(conn, host_id, state="removing")
        expect(badge).to_have_text("removing", timeout=POLL_TIMEOUT)
        assert badge.evaluate("element => element.dataset.marker") == "same"
        vms_repo.delete(conn, "quiet1")
        hosts_repo.delete(conn, host_id)
    assert errors == []
