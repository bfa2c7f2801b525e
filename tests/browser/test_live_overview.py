"""The overview's live list in a real browser, on a server with no hosts: this test plays the
worker of one operation (its row, as a worker writes it) while the page follows it.
test_dashboard.py watches the same list while a real VM is created on a lab host."""

import re

import pytest
from playwright.sync_api import expect

from app.db import get_db
from app.repositories import operations as ops_repo
from tests.browser.conftest import ADMIN, login, script_errors
from tests.factories import gen_operation
from tests.processes import app_for

pytestmark = pytest.mark.browser

POLL_TIMEOUT = 15_000  # ms: the page polls every 3 s


@pytest.fixture(scope="module")
def lab_hosts():
    """No lab hosts: nothing here reaches a host."""
    return []


@pytest.fixture(scope="module")
def nube_settings():
    """Nothing to prepare on the controller either: no playbook runs."""
    return {"NUBE_CONTROLLER_PREPARE": "0"}


def test_overview_follows_an_operations_progress_to_its_end(page, nube):
    errors = script_errors(page)
    login(page, *ADMIN)
    expect(page.locator("#live-operations-empty")).to_be_visible()
    app = app_for(nube["env"])
    with app.app_context():
        conn = get_db()
        # another machine's worker, beating: the monitor's recovery leaves it alone
        op_id = gen_operation(conn, "vm.create", "vm:web9", worker="elsewhere:1")
        ops_repo.set_progress(conn, op_id, 1, 3)
        item = page.locator(f'#live-operations [data-op-id="{op_id}"]')
        progress = item.locator('[data-slot="progress"]')
        expect(progress).to_have_text("1 of 3 tasks", timeout=POLL_TIMEOUT)
        expect(item.locator('[data-slot="status"] .badge')).to_have_text("running")
        expect(item.locator('[data-slot="target"]')).to_have_text("web9")
        expect(item.locator(".progress")).to_have_attribute("aria-valuenow", "33")
        expect(page.locator("#live-operations-empty")).to_be_hidden()

        ops_repo.set_progress(conn, op_id, 2, 3)
        expect(progress).to_have_text("2 of 3 tasks", timeout=POLL_TIMEOUT)
        ops_repo.set_progress(conn, op_id, 3, 3)
        assert ops_repo.finish(conn, op_id, "succeeded")
    expect(item.locator('[data-slot="status"] .badge')).to_have_text(
        "succeeded", timeout=POLL_TIMEOUT
    )
    expect(progress).to_have_text("3 of 3 tasks")
    expect(item.locator(".progress-bar")).to_have_class("progress-bar bg-success")
    assert errors == []


def test_operations_started_after_the_page_loaded_show_even_when_they_ended_between_polls(
    page, nube
):
    errors = script_errors(page)
    login(page, *ADMIN)
    app = app_for(nube["env"])
    with app.app_context():
        conn = get_db()
        op_id = gen_operation(
            conn, "vm.start", "vm:web8", requested_by="oper", worker="elsewhere:1"
        )
        assert ops_repo.finish(conn, op_id, "failed", error="no such VM")  # before any poll
    row = page.locator(f'#recent-operations tr[data-operation-id="{op_id}"]')
    expect(row).to_be_visible(timeout=POLL_TIMEOUT)
    expect(row.locator(".badge")).to_have_text("failed")
    expect(row).to_contain_text("web8")
    expect(row).to_contain_text("oper")
    item = page.locator(f'#live-operations [data-op-id="{op_id}"]')
    expect(item.locator('[data-slot="status"] .badge')).to_have_text("failed")
    expect(item.locator(".progress-bar")).to_have_class("progress-bar bg-danger")
    expect(item).to_have_count(
        0, timeout=POLL_TIMEOUT + 10_000
    )  # finished ones leave by themselves
    expect(row).to_be_visible()  # the table keeps it
    assert errors == []


def test_a_live_page_says_when_its_session_ended_and_logging_in_comes_back(page, nube):
    errors = script_errors(page)
    login(page, *ADMIN)
    expect(page.locator("h1")).to_have_text("Overview")  # a live page, polling
    app = app_for(nube["env"])
    with app.app_context():
        get_db().execute("DELETE FROM user_sessions")  # ended: idle, revoked, or a password change
    notice = page.locator("#session-ended")
    expect(notice).to_be_visible(timeout=POLL_TIMEOUT)
    expect(notice).to_contain_text("Your session ended")
    notice.get_by_role("link", name="Log in again").click()
    page.fill("#username", ADMIN[0])
    page.fill("#password", ADMIN[1])
    page.click("#submit")
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator("h1")).to_have_text("Overview")
    assert [e for e in errors if "401" not in e] == []  # the refused poll is the browser's note
