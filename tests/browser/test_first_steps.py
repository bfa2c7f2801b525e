"""README's "First steps", done literally in a real browser on a controller started as
`make run` starts it: log in, add a lab host with the values `make lab` prints (and the
network the README names), build an image, create a VM with the form's defaults wherever the
README names no value, start it and watch it boot to its login prompt; then what else the
README promises of a real guest (first-boot data, the guest agent, the console, stop, remove)."""

import re

import pytest
from playwright.sync_api import expect

from app import cloudinit
from tests.browser.conftest import ADMIN, login, screenshot
from tests.browser.test_dashboard import DRAWN, wait_for_operation
from tests.factories import make_ssh_key
from tests.images import build_unavailable_reason, keep_built

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BUILD_TIMEOUT = 900_000  # ms: mmdebstrap from the machine's apt sources, then compression
BOOT_TIMEOUT = 600_000  # ms: a real kernel under TCG (the lab's KVM cannot run one)


@pytest.fixture(scope="module")
def nube_settings():
    """Guests on the lab run under TCG; a graceful stop has time to finish."""
    return {"NUBE_VIRT_TYPE": "qemu", "NUBE_STOP_TIMEOUT": "120"}


@pytest.fixture(scope="module")
def owner_key(tmp_path_factory):
    return make_ssh_key(tmp_path_factory.mktemp("owner"), "owner@browser")[0]


def _step_add_a_host(page, lab):
    """2. Hosts → Add host: its address, a sudo user and password; VM network none (lab
    hosts); every other field as the form proposes it."""
    page.get_by_role("link", name="Hosts", exact=True).click()
    page.get_by_role("link", name="Add host").click()
    expect(page.locator("#share")).to_have_value("bind")  # this controller exports nothing
    page.fill("#address", lab["address"])
    page.fill("#user", lab["user"])
    page.fill("#password", lab["password"])
    page.fill("#network", "none")
    page.fill("#data_address", lab["data_address"])  # the lab's underlay
    page.click("#submit")
    wait_for_operation(page)


def _step_build_an_image(page):
    """3. Images → Build image, named debian12 (release and size as proposed)."""
    page.get_by_role("link", name="Images", exact=True).click()
    page.fill("#build-name", "debian12")
    page.locator("#build-form").get_by_role("button", name="Build image").click()
    expect(page).to_have_url(re.compile(r"/operations/\d+$"))
    expect(page.locator("#op-status")).to_have_text("succeeded", timeout=BUILD_TIMEOUT)


def test_the_readmes_first_steps_end_with_a_booted_vm(page, nube, owner_key):
    reason = build_unavailable_reason()
    if reason:
        pytest.fail(f"the README's image build must work here: {reason}")
    page.on("dialog", lambda dialog: dialog.accept())
    # 1. Open the dashboard and log in as admin.
    login(page, *ADMIN)
    expect(page.locator("h1")).to_have_text("Overview")
    _step_add_a_host(page, nube["hosts"][0])
    _step_build_an_image(page)
    images = nube["top"] / "export" / "iaas" / "images"
    keep_built(images / "debian12.qcow2")  # the integration tier boots the same image

    # 4. VMs → Create VM: a name, the image proposed, the memory proposed, your SSH key and
    # some user data; the form's defaults for everything else.
    page.get_by_role("link", name="VMs", exact=True).click()
    page.get_by_role("link", name="Create VM").click()
    expect(page.locator("#image")).to_have_value("debian12.qcow2")
    page.fill("#id", "guest1")
    page.fill("#ssh_keys", owner_key)
    page.fill("#user_data", "#cloud-config\nruncmd:\n  - echo hello from user data > /dev/ttyS0\n")
    page.click("#submit")
    wait_for_operation(page)
    expect(page.locator("#op-log")).to_contain_text("cloud-init seed ready")

    # 5. Start, with the button on the VM's page.
    page.goto("/vms/guest1")
    page.locator("#vm-actions").get_by_role("button", name="Start").click()
    wait_for_operation(page)
    page.goto("/vms/guest1")
    expect(page.locator("#vm-live")).to_contain_text("running")
    expect(page.locator("#ssh-keys")).to_contain_text(cloudinit.fingerprint(owner_key))

    # 6. Its boot log, followed live without a reload, to the login prompt.
    page.evaluate("window.nubeStayed = true")
    log = page.locator("#boot-log")
    expect(log).to_contain_text("GNU GRUB", timeout=BOOT_TIMEOUT)
    # getty prints the prompt while cloud-init's last stage still writes to the console
    expect(log).to_contain_text("guest1 login:", timeout=BOOT_TIMEOUT)
    expect(log).to_contain_text(re.compile(r"Cloud-init v\. \S+ finished"), timeout=BOOT_TIMEOUT)
    expect(log).to_contain_text("hello from user data")
    assert page.evaluate("window.nubeStayed === true")
    # the guest agent tells the page who the guest is
    expect(page.locator("[data-guest=hostname]")).to_have_text("guest1", timeout=120_000)
    expect(page.locator("[data-guest=os]")).to_contain_text("Debian")
    page.locator("#boot-log").evaluate("box => { box.scrollTop = box.scrollHeight; }")
    screenshot(page, "vm-boot")

    # 8. Its screen through the console: getty's login prompt on the VGA console too.
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
