"""Volumes in a real browser: a volume made on the Volumes page, attached from a running VM's
page (hot-plugged on the lab host) while the operation is watched to its end, shown on the VM
page and in the list; then detached from the stopped VM and removed."""

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
