"""A VM's disks in a real browser, on one lab host and one controller for the module.
Volumes: a volume made on the Volumes page, attached from a running VM's page (hot-plugged on
the lab host) while the operation is watched to its end, shown on the VM page and in the list;
then detached from the stopped VM and removed. Snapshots: the stopped VM (a stopped VM's
snapshot is qemu-img's work on the repository's files) snapshotted twice from its page with
each operation watched to its end, listed in its Snapshots card; then reverted to the first
through the page that says what is lost (the name typed), and the second deleted the same way."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser import blank_vm
from tests.browser.conftest import screenshot
from tests.browser.test_dashboard import wait_for_operation

pytestmark = [pytest.mark.browser]


def test_a_volume_is_attached_from_the_vm_page_and_watched(page, nube, tmp_path):
    page.on("dialog", lambda dialog: dialog.accept())
    blank_vm.prepare(page, nube["hosts"][0], tmp_path, start=True)

    # Volumes → Create volume: data1, 2 GiB, empty
    page.get_by_role("link", name="Volumes", exact=True).click()
    expect(page).to_have_url(re.compile(r"/volumes/$"))
    page.fill("#volume-form #name", "data1")
    page.fill("#volume-form #size", "2")
    page.click("#volume-form [type=submit]")
    wait_for_operation(page)
    expect(page.locator("#op-log")).to_contain_text("volume data1 ready: 2 GiB")

    # the running VM's page offers it; Attach hot-plugs it, and the operation is followed live
    page.goto("/vms/web1")
    expect(page.locator("#no-volumes")).to_be_visible()
    page.select_option("#attach-form select", "data1")
    page.click("#attach-form [type=submit]")
    wait_for_operation(page)
    log = page.locator("#op-log")
    expect(log).to_contain_text("web1 is running: hot-plugging vdb")
    expect(log).to_contain_text("data1 attached to web1 as vdb")
    screenshot(page, "volume-attach")

    page.goto("/vms/web1")
    row = page.locator('#vm-volumes tr[data-volume="data1"]')
    expect(row).to_contain_text("vdb")
    expect(row).to_contain_text("/dev/disk/by-id/virtio-data1")
    screenshot(page, "vm-volumes")
    page.goto("/volumes/")
    listed = page.locator("#volumes-table")
    expect(listed).to_contain_text("in-use")
    expect(listed).to_contain_text("web1")
    screenshot(page, "volumes")

    # a guest without an OS never lets a disk go: stop the VM, then detach, then remove
    page.goto("/vms/web1")
    page.locator("#vm-actions").get_by_role("button", name="Force off").click()
    wait_for_operation(page)
    page.goto("/vms/web1")
    row.get_by_role("button", name="Detach").click()
    wait_for_operation(page)
    page.goto("/volumes/data1")
    page.fill("input[name=confirm]", "data1")
    page.get_by_role("button", name="Remove").click()
    wait_for_operation(page)
    page.goto("/volumes/")
    expect(page.locator("#empty-state")).to_be_visible()


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
    blank_vm.web1(page, nube["hosts"][0], tmp_path, start=False)  # stopped by the test above
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
