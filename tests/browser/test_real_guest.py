"""A real guest from the dashboard: create a VM with the operator's SSH key from the form,
start it, and watch its boot log reach the login prompt on the VM's page."""

import os
import re
import shutil

import pytest
from playwright.sync_api import expect

from app import cloudinit
from tests.browser.conftest import ADMIN, add_lab_host, login, screenshot
from tests.browser.test_dashboard import DRAWN, wait_for_operation
from tests.factories import make_ssh_key
from tests.images import built_image

pytestmark = [pytest.mark.browser, pytest.mark.slow]

IMAGE = "debian12.qcow2"
BOOT_TIMEOUT = 600_000  # ms: a real kernel under TCG (the lab's KVM cannot run one)


@pytest.fixture(scope="module")
def nube_settings():
    """Guests on the lab run under TCG; a graceful stop has time to finish."""
    return {"NUBE_VIRT_TYPE": "qemu", "NUBE_STOP_TIMEOUT": "120"}


@pytest.fixture(scope="module")
def guest_image(nube):
    """Nube's Debian image (cached), put in the server's repository like a finished build."""
    target = nube["top"] / "export" / "iaas" / "images" / IMAGE
    shutil.copyfile(built_image(), target)
    os.chmod(target, 0o644)
    return IMAGE


@pytest.fixture(scope="module")
def owner_key(tmp_path_factory):
    return make_ssh_key(tmp_path_factory.mktemp("owner"), "owner@browser")[0]


def test_a_vm_with_a_key_boots_to_its_login_prompt(page, nube, guest_image, owner_key):
    page.on("dialog", lambda dialog: dialog.accept())
    login(page, *ADMIN)
    add_lab_host(page, nube["hosts"][0])
    wait_for_operation(page)

    page.goto("/vms/new")
    page.fill("#id", "guest1")
    page.select_option("#image", guest_image)
    page.fill("#mem", "768")
    page.fill("#hostname", "nube-browser")
    page.fill("#ssh_keys", owner_key)
    page.fill("#user_data", "#cloud-config\nruncmd:\n  - echo hello from user data > /dev/ttyS0\n")
    page.check("#start")
    page.click("#submit")
    wait_for_operation(page)
    expect(page.locator("#op-log")).to_contain_text("cloud-init seed ready")

    page.goto("/vms/guest1")
    expect(page.locator("#vm-live")).to_contain_text("running")
    fingerprint = cloudinit.fingerprint(owner_key)
    expect(page.locator("#ssh-keys")).to_contain_text(fingerprint)
    # the page follows the boot log live, without a reload, to the login prompt
    page.evaluate("window.nubeStayed = true")
    log = page.locator("#boot-log")
    expect(log).to_contain_text("GNU GRUB", timeout=BOOT_TIMEOUT)
    # getty prints the prompt while cloud-init's last stage still writes to the console
    expect(log).to_contain_text("nube-browser login:", timeout=BOOT_TIMEOUT)
    expect(log).to_contain_text(re.compile(r"Cloud-init v\. \S+ finished"), timeout=BOOT_TIMEOUT)
    expect(log).to_contain_text("hello from user data")
    assert page.evaluate("window.nubeStayed === true")
    # the guest agent tells the page who the guest is
    expect(page.locator("[data-guest=hostname]")).to_have_text("nube-browser", timeout=120_000)
    expect(page.locator("[data-guest=os]")).to_contain_text("Debian")
    page.locator("#boot-log").evaluate("box => { box.scrollTop = box.scrollHeight; }")
    screenshot(page, "vm-boot")

    # its screen through the console: getty's login prompt on the VGA console too
    page.locator("#console-form").get_by_role("button", name="Console").click()
    expect(page.locator("#console-status")).to_have_text("connected")
    page.wait_for_function(DRAWN, timeout=30_000)
    screenshot(page, "console")

    page.goto("/vms/guest1")

    page.locator("#vm-actions").get_by_role("button", name="Stop").click()
    wait_for_operation(page)
    expect(page.locator("#op-log")).to_contain_text("through the guest agent")
    page.goto("/vms/guest1")
    page.fill("#remove-form input[name=confirm]", "guest1")
    page.click("#remove-form [type=submit]")
    wait_for_operation(page)
    vms = nube["top"] / "export" / "iaas" / "vms"
    assert sorted(p.name for p in vms.iterdir()) == []
