"""A VM's disks and networks in a real browser, on one lab host and one controller for the
module.
Volumes: a volume made on the Volumes page, attached from a running VM's page (hot-plugged on
the lab host) while the operation is watched to its end, shown on the VM page and in the list;
then detached from the stopped VM and removed. Snapshots: the stopped VM (a stopped VM's
snapshot is qemu-img's work on the repository's files) snapshotted twice from its page with
each operation watched to its end, listed in its Snapshots card; then reverted to the first
through the page that says what is lost (the name typed), and the second deleted the same way.
Networks: a network made on the Networks page and a VM created on it from the VM form (its
NIC's address allocated with the VM, the host given the network by host_networks.yaml)."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser import blank_vm
from tests.browser.conftest import ADMIN, login, screenshot
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


def _create_network(page):
    """Networks → Create network: net1, a VXLAN overlay on 10.20.0.0/24."""
    page.get_by_role("link", name="Networks", exact=True).click()
    expect(page).to_have_url(re.compile(r"/networks/$"))
    expect(page.locator("#empty-state")).to_be_visible()
    form = page.locator("#network-form")
    form.locator("#name").fill("net1")
    form.locator("#type").select_option("vxlan")
    form.locator("#cidr").fill("10.20.0.0/24")
    form.locator("#gateway").fill("10.20.0.1")
    form.locator("#dns").fill("10.20.0.1")
    form.locator("#range").fill("10.20.0.10-10.20.0.200")
    form.locator("[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/networks/net1$"))
    expect(page.locator("#network-vni")).to_have_text("100")
    expect(page.locator("#network-usage")).to_have_text("0 used, 191 free")


def test_a_vm_on_a_new_network_shows_its_address(page, nube):
    """The module's lab host and blank image (the volume test's): a network made on the
    Networks page, web2 created on it from the VM form, its address on the VM page, in the VMs
    list and on the network's page; the Networks page's screenshot for the README; removal
    refused while web2 uses it (naming it), done once web2 is gone. web2 is never started."""
    login(page, *ADMIN)
    _create_network(page)

    # the VM form offers the project's networks: web2 gets a NIC on net1, the first address
    page.goto("/vms/new")
    page.fill("#id", "web2")
    page.select_option("#image", blank_vm.IMAGE)
    page.fill("#mem", "64")
    page.select_option("#networks", ["net1"])
    page.click("#submit")
    wait_for_operation(page)

    page.goto("/vms/web2")
    expect(page.locator("#vm-ip")).to_have_text("10.20.0.10")
    nic = page.locator('#vm-nics tr[data-network="net1"]')
    expect(nic).to_contain_text("10.20.0.10")
    expect(nic).to_contain_text(re.compile(r"52:54(:[0-9a-f]{2}){4}"))
    page.goto("/vms/")
    expect(page.locator('tr[data-vm-id="web2"] [data-ip]')).to_have_text("10.20.0.10")
    page.goto("/networks/net1")
    address = page.locator('#network-addresses tr[data-ip="10.20.0.10"]')
    expect(address).to_contain_text("web2")
    page.goto("/networks/")
    expect(page.locator('#networks-table tr[data-network="net1"]')).to_contain_text("1 / 190")
    screenshot(page, "networks")

    # while web2 uses it the network stays, and the page says which VM keeps it
    page.goto("/networks/net1/remove")
    expect(page.locator("#in-use")).to_contain_text("web2")
    expect(page.get_by_role("button", name="Remove network")).to_be_disabled()

    page.goto("/vms/web2")
    page.fill("#remove-form input[name=confirm]", "web2")
    page.get_by_role("button", name="Remove VM").click()
    wait_for_operation(page)
    page.goto("/networks/net1/remove")
    expect(page.locator("#what-goes")).to_contain_text("VNI 100")
    page.fill("#confirm", "net1")
    page.get_by_role("button", name="Remove network").click()
    expect(page).to_have_url(re.compile(r"/networks/$"))
    expect(page.locator(".alert-success")).to_contain_text("Network net1 removed.")
    expect(page.locator("#empty-state")).to_be_visible()
