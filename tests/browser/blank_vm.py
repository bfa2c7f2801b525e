"""A lab host, a blank image and a VM web1 made from it through the pages (the volume and
snapshot browser tests' start: a blank disk, so SeaBIOS waits when it runs)."""

import subprocess

from playwright.sync_api import expect

from tests.browser.conftest import ADMIN, add_lab_host, login
from tests.browser.test_dashboard import wait_for_operation

IMAGE = "blank.qcow2"


def prepare(page, lab, tmp_path, start):
    """Log in as the admin, add the lab host, upload a blank image, make web1 (started when
    start is true)."""
    login(page, *ADMIN)
    add_lab_host(page, lab)
    wait_for_operation(page)
    image = tmp_path / IMAGE
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "64M"], check=True)
    page.goto("/images/")
    page.set_input_files("#file", str(image))
    page.click("#upload-form [type=submit]")
    expect(page.locator("#images-table")).to_contain_text(IMAGE)
    page.goto("/vms/new")
    page.fill("#id", "web1")
    page.select_option("#image", IMAGE)
    page.fill("#mem", "64")
    if start:
        page.check("#start")
    page.click("#submit")
    wait_for_operation(page)


def web1(page, lab, tmp_path, start):
    """Log in as the admin and make sure web1 exists (an earlier test of the module may have
    made it: the module's controller is shared); prepare() when it does not."""
    login(page, *ADMIN)
    page.goto("/vms/web1")
    if page.locator("#vm-actions").count():
        return
    page.context.clear_cookies()
    prepare(page, lab, tmp_path, start)
