"""Self-service within limits (issue 21), in a real browser on a real Nube with a lab host: an
admin makes two projects and a member of one of them; the member keeps an SSH key, creates a
VM with it in their project, is refused a second one beyond the memory quota (the message names
the quota, its usage and its limit, and nothing is made), and sees nothing of the other project
nor of the cluster. VMs are only created (defined, left stopped): no guest boots."""

import re
import subprocess

import pytest
from playwright.sync_api import expect

from app import cloudinit
from tests.browser.conftest import ADMIN, add_lab_host, login, screenshot
from tests.browser.test_dashboard import wait_for_operation
from tests.factories import make_ssh_key

pytestmark = pytest.mark.browser

MEMBER = ("alice", "alice-browser-pw")
IMAGE = "blank.qcow2"
# team-a has room for two VMs but only 96 MiB: a second 64 MiB VM goes over its memory quota
TEAM_A = {"name": "team-a", "description": "Alice's team", "vms": "2", "mem": "96"}
TEAM_B = {"name": "team-b", "description": "Another team", "vms": "4", "mem": "1024"}
OTHER_FILTER = "/vms/?q=id = b1 OR project = team-b"
REFUSAL = "project team-a's quota is reached: memory: 64 of 96 MiB used, this VM needs 64"


def _add_project(page, project):
    """Projects → New project, with a VM and a memory quota."""
    page.goto("/projects/")
    form = page.locator("#project-form")
    form.locator("#name").fill(project["name"])
    form.locator("#description").fill(project["description"])
    form.locator("#quota_vms").fill(project["vms"])
    form.locator("#quota_mem").fill(project["mem"])
    form.locator("[type=submit]").click()
    expect(page).to_have_url(re.compile(rf"/projects/{project['name']}$"))


def _add_member(page, username, password, project):
    """Users → Add a user with the role member, then add them to the project on its page."""
    page.goto("/users/")
    form = page.locator("#user-form")
    form.locator("#username").fill(username)
    form.locator("#role").select_option("member")
    form.locator("#password").fill(password)
    form.locator("#confirm").fill(password)
    form.locator("[type=submit]").click()
    expect(page.locator("#users-table")).to_contain_text(username)
    page.goto(f"/projects/{project}")
    page.locator("#member-form #user").select_option(username)
    page.locator("#member-form [type=submit]").click()
    expect(page.locator(f'#members [data-member="{username}"]')).to_be_visible()


def _fill_vm_form(page, vm_id, project=None):
    """VMs → Create VM: a name, the blank image, 64 MiB, and the project when one is named."""
    page.goto("/vms/new")
    page.fill("#id", vm_id)
    if project:
        page.select_option("#project", project)
    page.select_option("#image", IMAGE)
    page.fill("#mem", "64")


def _admin_prepares(page, nube, tmp_path):
    """As admin: a lab host, a blank image, projects team-a and team-b, the member alice in
    team-a, and a VM b1 in team-b. Returns the operation id of b1's creation."""
    login(page, *ADMIN)
    add_lab_host(page, nube["hosts"][0])
    wait_for_operation(page)
    image = tmp_path / IMAGE
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "64M"], check=True)
    page.goto("/images/")
    page.set_input_files("#file", str(image))
    page.click("#upload-form [type=submit]")
    expect(page.locator("#images-table")).to_contain_text(IMAGE)
    _add_project(page, TEAM_A)
    _add_project(page, TEAM_B)
    _add_member(page, *MEMBER, TEAM_A["name"])
    _fill_vm_form(page, "b1", project=TEAM_B["name"])
    page.click("#submit")
    wait_for_operation(page)
    op_id = page.url.rstrip("/").rsplit("/", 1)[1]
    page.get_by_role("button", name="Log out").click()
    return op_id


def _member_adds_a_key(page, key, fingerprint):
    """Account → SSH keys: the member keeps their public key under a name."""
    page.get_by_role("link", name="SSH keys").click()
    expect(page).to_have_url(re.compile(r"/account/keys$"))
    page.fill("#key-form #name", "laptop")
    page.fill("#key-form #public_key", key)
    page.click("#key-form [type=submit]")
    expect(page.locator('#keys-table [data-key="laptop"]')).to_contain_text(fingerprint)


def _member_creates_a_vm(page, fingerprint):
    """The member's VM form offers their project only, no host, their saved key: a1 is made in
    team-a with that key."""
    _fill_vm_form(page, "a1")
    expect(page.locator("#project option")).to_have_text([TEAM_A["name"]])
    expect(page.locator("#host")).to_have_count(0)  # placement chooses for a member
    expect(page.locator("#saved_keys option")).to_have_count(1)
    expect(page.locator("#saved_keys option")).to_contain_text(f"laptop ({fingerprint})")
    page.select_option("#saved_keys", index=0)
    page.click("#submit")
    wait_for_operation(page)
    page.goto("/vms/a1")
    expect(page.locator("#vm-project")).to_have_text(TEAM_A["name"])
    expect(page.locator("#ssh-keys")).to_contain_text(fingerprint)


def _member_is_refused_beyond_the_quota(page, nube):
    """A second 64 MiB VM would take team-a to 128 of 96 MiB: refused on the form with the
    quota, its usage and its limit, and nothing is made."""
    _fill_vm_form(page, "a2")
    page.select_option("#saved_keys", index=0)
    page.click("#submit")
    expect(page).to_have_url(re.compile(r"/vms/new$"))
    expect(page.locator(".alert-danger")).to_contain_text(REFUSAL)
    screenshot(page, "member-quota")
    assert page.goto("/vms/a2").status == 404
    disks = sorted(p.name for p in (nube["top"] / "export" / "iaas" / "vms").iterdir())
    assert not [name for name in disks if name.startswith("a2")], disks


def _member_sees_only_their_project(page, b1_operation):
    """No cluster pages in the navigation, none reachable; the other project's VM, its
    operation and the project itself are absent and "not found"; counts are the member's."""
    page.goto("/")
    nav = page.locator("nav")
    for label in ("Hosts", "Users", "Audit"):
        expect(nav.get_by_role("link", name=label, exact=True)).to_have_count(0)
    expect(nav.get_by_role("link", name="VMs", exact=True)).to_have_count(1)
    expect(page.locator("#vms-total")).to_have_text("1")
    expect(page.locator("#card-hosts, #card-cpus, #card-memory")).to_have_count(0)
    page.goto("/vms/")
    expect(page.locator("tr[data-vm-id]")).to_have_count(1)
    expect(page.locator('tr[data-vm-id="a1"]')).to_be_visible()
    page.goto(OTHER_FILTER)  # a filter never widens what a member sees
    expect(page.locator("tr[data-vm-id]")).to_have_count(0)
    page.goto("/projects/")
    expect(page.locator("#projects-table tr[data-project]")).to_have_count(1)
    expect(page.locator('#projects-table tr[data-project="team-a"]')).to_be_visible()
    assert page.goto("/projects/team-a").status == 200
    expect(page.locator('[data-quota="mem"]')).to_contain_text("memory: 64 of 96 MiB")
    for path in ("/vms/b1", f"/operations/{b1_operation}", "/projects/team-b"):
        assert page.goto(path).status == 404, path
    for path in ("/hosts/", "/users/", "/users/audit"):
        assert page.goto(path).status == 403, path


def _admin_cleans_up(page):
    """As admin: the projects page's usage bars (the README's picture), then remove both
    VMs so the lab host is left as it was found."""
    page.get_by_role("button", name="Log out").click()
    login(page, *ADMIN)
    page.goto("/projects/")
    bars = page.locator('#projects-table tr[data-project="team-a"]')
    expect(bars.locator('[data-quota="mem"]')).to_contain_text("memory: 64 of 96 MiB (67%)")
    expect(bars.locator('[data-quota="vms"]')).to_contain_text("VMs: 1 of 2 (50%)")
    screenshot(page, "projects")
    page.goto(OTHER_FILTER)  # the filter the member tried does find b1 for an admin
    expect(page.locator("tr[data-vm-id]")).to_have_count(1)
    expect(page.locator('tr[data-vm-id="b1"]')).to_be_visible()
    for vm_id in ("a1", "b1"):
        page.goto(f"/vms/{vm_id}")
        page.fill("#remove-form input[name=confirm]", vm_id)
        page.click("#remove-form [type=submit]")
        wait_for_operation(page)


def test_a_member_serves_themselves_within_their_projects_quota(page, nube, tmp_path):
    page.on("dialog", lambda dialog: dialog.accept())  # confirmations before destruction
    b1_operation = _admin_prepares(page, nube, tmp_path)
    key, _ = make_ssh_key(tmp_path, "alice@laptop")
    fingerprint = cloudinit.fingerprint(key)

    login(page, *MEMBER)
    expect(page.locator("h1")).to_have_text("Overview")
    expect(page.locator("#vms-total")).to_have_text("0")  # b1 is team-b's
    _member_adds_a_key(page, key, fingerprint)
    _member_creates_a_vm(page, fingerprint)
    _member_is_refused_beyond_the_quota(page, nube)
    _member_sees_only_their_project(page, b1_operation)
    _admin_cleans_up(page)
