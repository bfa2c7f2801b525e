"""Snapshots in a real browser, on a lab host: a stopped VM with a blank disk (a stopped VM's
snapshot is qemu-img's work on the repository's files), snapshotted twice from its page with
each operation watched to its end, listed in its Snapshots card; then reverted to the first
through the page that says what is lost (the name typed), and the second deleted the same way."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser import blank_vm
from tests.browser.conftest import screenshot
from tests.browser.test_dashboard import wait_for_operation

pytestmark = [pytest.mark.browser]


def _take(page, name):
    """Take a snapshot from the VM page's form and watch its operation to the end."""
    page.goto("/vms/web1")
    page.fill("#snapshot-name", name)
    page.click("#snapshot-form [type=submit]")
    wait_for_operation(page)
    expect(page.locator("#op-log")).to_contain_text(f"snapshot {name} of web1 taken")


def _confirm(page, name, action, button):
    """From the VM page, open a snapshot's Revert or Delete page, type its name, submit and
    watch the operation."""
    page.goto("/vms/web1")
    row = page.locator(f'#vm-snapshots tr[data-snapshot="{name}"]')
    row.get_by_role("link", name=action).click()
    expect(page).to_have_url(re.compile(rf"/vms/web1/snapshots/{name}/{action.lower()}$"))
    page.fill("#confirm", name)
    page.get_by_role("button", name=button).click()
    wait_for_operation(page)


def test_snapshot_a_stopped_vm_revert_and_delete(page, nube, tmp_path):
    blank_vm.prepare(page, nube["hosts"][0], tmp_path, start=False)
    page.goto("/vms/web1")
    expect(page.locator("#no-snapshots")).to_be_visible()

    _take(page, "before-upgrade")
    _take(page, "after-config")
    page.goto("/vms/web1")
    card = page.locator("#snapshots-card")
    first = card.locator('tr[data-snapshot="before-upgrade"]')
    expect(first).to_contain_text("ready")
    expect(first).to_contain_text("taken stopped")
    expect(first.locator('[data-slot="size"]')).to_have_text(re.compile(r"\d+(\.\d)? (B|KiB|MiB)"))
    expect(first.get_by_role("link", name="Revert")).to_be_visible()  # the VM is stopped
    expect(card.locator("tr[data-snapshot]")).to_have_count(2)
    screenshot(page, "vm-snapshots")

    # Revert: the page says what is lost; a wrong name changes nothing
    page.locator('tr[data-snapshot="before-upgrade"]').get_by_role("link", name="Revert").click()
    expect(page.locator("#what-is-lost")).to_contain_text("since the snapshot is lost")
    page.fill("#confirm", "nope")
    page.get_by_role("button", name="Revert VM").click()
    expect(page.locator(".alert")).to_contain_text("Type the snapshot's name (before-upgrade)")
    _confirm(page, "before-upgrade", "Revert", "Revert VM")
    expect(page.locator("#op-log")).to_contain_text("web1 is back at snapshot before-upgrade")

    _confirm(page, "after-config", "Delete", "Delete snapshot")
    expect(page.locator("#op-log")).to_contain_text("the VM keeps its data")
    page.goto("/vms/web1")
    expect(card.locator("tr[data-snapshot]")).to_have_count(1)
    expect(card.locator('tr[data-snapshot="before-upgrade"]')).to_be_visible()
    _confirm(page, "before-upgrade", "Delete", "Delete snapshot")
    page.goto("/vms/web1")
    expect(page.locator("#no-snapshots")).to_be_visible()
