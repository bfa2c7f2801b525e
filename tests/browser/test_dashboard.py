"""An operator's day in a real browser: log in, add a host, upload an image, run a VM."""

import os
import re
import signal
import subprocess
from contextlib import contextmanager

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import (
    ADMIN,
    OPERATOR,
    add_lab_host,
    login,
    screenshot,
    script_errors,
)
from tests.lab import lab

pytestmark = pytest.mark.browser

OPERATION_TIMEOUT = 180_000  # ms: host_add.yaml over SSH takes several seconds
# True once the console's canvas has some lit pixels (text on the VM's screen).
DRAWN = """() => {
  const canvas = document.querySelector("canvas");
  if (!canvas || !canvas.width || !canvas.height) return false;
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let lit = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i] + data[i + 1] + data[i + 2] > 96) lit++;
  }
  return lit > 200;
}"""


def wait_for_operation(page, status="succeeded"):
    """On an operation page, wait until the live status shows a final status."""
    expect(page).to_have_url(re.compile(r"/operations/\d+$"))
    expect(page.locator("#op-status")).to_have_text(status, timeout=OPERATION_TIMEOUT)


@contextmanager
def libvirtd_paused(index):
    """Lab host `index`'s libvirtd stopped (SIGSTOP) for the block: calls to it wait (less than
    HOST_TIMEOUT, or they fail), and go on where they were once it continues."""
    pid = lab.daemon_pids(index)["libvirtd"]
    assert pid, f"lab host {index} runs no libvirtd"
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def create_vm_watching_the_overview(page, vm_id, image, mem):
    """Create a VM from the form while another tab shows the overview: its in-progress list
    shows the creation's progress while it runs (the host's libvirtd is held for a moment so
    that a poll finds it running), then its end; the overview's scripts raise no error."""
    overview = page.context.new_page()
    errors = script_errors(overview)
    overview.goto("/")
    expect(overview.locator("#live-operations-empty")).to_be_visible()
    page.goto("/vms/new")
    page.fill("#id", vm_id)
    page.select_option("#image", image)
    page.fill("#mem", str(mem))
    with libvirtd_paused(1):  # lab1: create_vm has reported "0 of 3" and waits for its answer
        page.click("#submit")
        expect(page).to_have_url(re.compile(r"/operations/\d+$"))
        op_id = page.url.rstrip("/").rsplit("/", 1)[1]
        item = overview.locator(f'#live-operations [data-op-id="{op_id}"]')
        expect(item.locator('[data-slot="progress"]')).to_have_text("0 of 3 tasks", timeout=7_000)
        expect(item.locator('[data-slot="status"] .badge')).to_have_text("running")
        expect(item.locator('[data-slot="target"]')).to_have_text(vm_id)
    wait_for_operation(page)
    expect(item.locator('[data-slot="status"] .badge')).to_have_text("succeeded", timeout=15_000)
    expect(item.locator('[data-slot="progress"]')).to_have_text("3 of 3 tasks")
    # started after the overview loaded, it has its row in Recent operations too
    row = overview.locator(f'#recent-operations tr[data-operation-id="{op_id}"]')
    expect(row.locator(".badge")).to_have_text("succeeded", timeout=15_000)
    screenshot(overview, "overview")  # the README's picture: an overview that followed it
    overview.close()
    assert errors == []


def test_wrong_password_is_refused(page):
    login(page, ADMIN[0], "not-the-password")
    expect(page.get_by_text("Wrong user name or password.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/login"))


def test_operator_cannot_reach_the_users_page(page):
    login(page, *OPERATOR)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.locator("nav").get_by_role("link", name="Users")).to_have_count(0)
    response = page.goto("/users/")
    assert response.status == 403
    expect(page.get_by_text("Your role does not allow this page.")).to_be_visible()


def test_host_image_and_vm_lifecycle(page, nube, tmp_path):
    page.on("dialog", lambda dialog: dialog.accept())  # confirmations before destruction
    login(page, *ADMIN)
    expect(page.get_by_text("No hosts yet")).to_be_visible()

    # Add a lab host and watch its operation (host_add.yaml) finish, live.
    add_lab_host(page, nube["hosts"][0], before_submit=lambda: screenshot(page, "add-host"))
    expect(page.locator("#op-status")).not_to_have_text("succeeded")  # still running
    wait_for_operation(page)
    expect(page.locator("#op-log")).to_contain_text("Authorise the controller's SSH key")
    screenshot(page, "operation")
    page.goto("/hosts/")
    expect(page.locator("#hosts-table")).to_contain_text("ready")
    screenshot(page, "hosts")

    # Upload a base image through the form.
    image = tmp_path / "blank.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "64M"], check=True)
    page.goto("/images/")
    page.set_input_files("#file", str(image))
    page.fill("#description", "a blank disk")
    page.click("#upload-form [type=submit]")
    expect(page.locator("#images-table")).to_contain_text("blank.qcow2")
    screenshot(page, "images")

    # Create a VM while the overview follows it, then start it from another tab while this
    # one watches the list.
    create_vm_watching_the_overview(page, "web1", "blank.qcow2", 64)
    page.goto("/vms/")
    row = page.locator('tr[data-vm-id="web1"]')
    expect(row.locator('[data-field="state"] .badge')).to_have_text("stopped")
    expect(row.get_by_role("button", name="Start")).to_have_count(1)
    page.evaluate("window.nubeStayed = true")  # gone if the page reloads
    other = page.context.new_page()
    other.goto("/vms/web1")
    other.locator("#vm-actions").get_by_role("button", name="Start").click()
    wait_for_operation(other)
    other.close()
    # the row follows in place: badge and buttons change, and the page never reloaded
    expect(row.locator('[data-field="state"] .badge')).to_have_text("running", timeout=30_000)
    expect(row.get_by_role("button", name="Start")).to_have_count(0)
    expect(row.get_by_role("button", name="Stop")).to_have_count(1)
    assert page.evaluate("window.nubeStayed === true")
    page.goto("/vms/web1")
    expect(page.locator("#vm-live")).to_contain_text("running")
    expect(page.locator("#vm-actions").get_by_role("button", name="Start")).to_have_count(0)
    screenshot(page, "vm")
    page.goto("/vms/")
    screenshot(page, "vms")

    # Its console: noVNC draws the VM's screen (a blank disk: the BIOS, no bootable device).
    page.goto("/vms/web1")
    page.locator("#console-form").get_by_role("button", name="Console").click()
    expect(page.locator("#console-status")).to_have_text("connected")
    page.wait_for_function(DRAWN, timeout=30_000)  # the README's picture: test_first_steps.py
    response = page.reload()  # the link was spent by the websocket: it opens nothing twice
    assert response.status == 410
    expect(page.locator("#console-expired")).to_contain_text("already used")

    # A second host: migrate web1 to it live from the VM's page, then drain that host back.
    add_lab_host(page, nube["hosts"][1], name="lab2")
    wait_for_operation(page)
    page.goto("/vms/web1")
    lab2 = page.locator("#migrate-form option", has_text="lab2").get_attribute("value")
    page.select_option("#migrate-form select", lab2)
    page.click("#migrate-form [type=submit]")
    wait_for_operation(page)
    expect(page.locator("#op-log")).to_contain_text("migrating web1 live from lab1 to lab2")
    expect(page.locator("#op-log")).to_contain_text("web1 is on lab2 now (running)")
    screenshot(page, "migrate")
    page.goto(f"/hosts/{lab2}")
    expect(page.locator("tr[data-vm-id=web1]")).to_have_count(1)
    page.click("#drain-form [type=submit]")  # confirmed by the dialog handler above
    wait_for_operation(page)
    expect(page.locator("#op-log")).to_contain_text("drained lab2: 1 moved, 0 stayed")
    page.goto("/vms/web1")
    expect(page.locator("#vm-live")).to_contain_text("lab1")
    expect(page.locator("#vm-live")).to_contain_text("running")

    # Stop it (a blank disk ignores ACPI: forced off after STOP_TIMEOUT), then remove it.
    page.goto("/vms/web1")
    page.locator("#vm-actions").get_by_role("button", name="Stop").click()
    wait_for_operation(page)
    page.goto("/vms/web1")
    expect(page.locator("#vm-live")).to_contain_text("stopped")
    page.fill("#remove-form input[name=confirm]", "web1")
    page.click("#remove-form [type=submit]")
    wait_for_operation(page)
    page.goto("/vms/")
    expect(page.get_by_text("No VMs yet")).to_be_visible()

    # Log out: the dashboard is closed again.
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login"))
    page.goto("/vms/")
    expect(page).to_have_url(re.compile(r"/login"))
