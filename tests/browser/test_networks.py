"""Networks in a real browser, on one lab host: a network made on the Networks page, a VM
created on it from the VM form (its NIC's address allocated with the VM, the host given the
network's bridge and VXLAN device by host_networks.yaml), the address shown on the VM page, in
the VMs list and on the network's page; the Networks page's screenshot for the README; then
the removal page refusing while the VM uses the network (naming it), and removing it once the
VM is gone. The VM is never started: a blank disk has no guest to configure."""

import re
import subprocess

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ADMIN, add_lab_host, login, screenshot
from tests.browser.test_dashboard import wait_for_operation

pytestmark = [pytest.mark.browser]
IMAGE = "blank.qcow2"


def _upload_blank_image(page, tmp_path):
    """A blank 64 MiB qcow2 uploaded on the Images page."""
    image = tmp_path / IMAGE
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "64M"], check=True)
    page.goto("/images/")
    page.set_input_files("#file", str(image))
    page.click("#upload-form [type=submit]")
    expect(page.locator("#images-table")).to_contain_text(IMAGE)


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


def test_a_vm_on_a_new_network_shows_its_address(page, nube, tmp_path):
    login(page, *ADMIN)
    add_lab_host(page, nube["hosts"][0])
    wait_for_operation(page)
    _upload_blank_image(page, tmp_path)
    _create_network(page)

    # the VM form offers the project's networks: web1 gets a NIC on net1, the first address
    page.goto("/vms/new")
    page.fill("#id", "web1")
    page.select_option("#image", IMAGE)
    page.fill("#mem", "64")
    page.select_option("#networks", ["net1"])
    page.click("#submit")
    wait_for_operation(page)

    page.goto("/vms/web1")
    expect(page.locator("#vm-ip")).to_have_text("10.20.0.10")
    nic = page.locator('#vm-nics tr[data-network="net1"]')
    expect(nic).to_contain_text("10.20.0.10")
    expect(nic).to_contain_text(re.compile(r"52:54(:[0-9a-f]{2}){4}"))
    page.goto("/vms/")
    expect(page.locator('tr[data-vm-id="web1"] [data-ip]')).to_have_text("10.20.0.10")
    page.goto("/networks/net1")
    address = page.locator('#network-addresses tr[data-ip="10.20.0.10"]')
    expect(address).to_contain_text("web1")
    page.goto("/networks/")
    expect(page.locator('#networks-table tr[data-network="net1"]')).to_contain_text("1 / 190")
    screenshot(page, "networks")

    # while web1 uses it the network stays, and the page says which VM keeps it
    page.goto("/networks/net1/remove")
    expect(page.locator("#in-use")).to_contain_text("web1")
    expect(page.get_by_role("button", name="Remove network")).to_be_disabled()

    page.goto("/vms/web1")
    page.fill("#remove-form input[name=confirm]", "web1")
    page.get_by_role("button", name="Remove VM").click()
    wait_for_operation(page)
    page.goto("/networks/net1/remove")
    expect(page.locator("#what-goes")).to_contain_text("VNI 100")
    page.fill("#confirm", "net1")
    page.get_by_role("button", name="Remove network").click()
    expect(page).to_have_url(re.compile(r"/networks/$"))
    expect(page.locator(".alert-success")).to_contain_text("Network net1 removed.")
    expect(page.locator("#empty-state")).to_be_visible()
