"""A member's pages: a project's page opens for its members and for operators (it listed the
users, which only admins may, so it answered 403); what a member sees leaves out, on the
overview, every card about the hosts or the cluster's capacity (which they may not see, so
they read as zero, with links to forbidden pages), on the projects pages, memberships
(they see no other user, so would read as none), and on the images page, the forms that
manage images (refused to them) and the VMs of other projects in its counts."""

from app import core
from tests.api_client import Api, make_token
from tests.conftest import login
from tests.factories import gen_user, gen_vm


def _member_of_lab(app):
    """A test client logged in as stu, a member of project lab."""
    gen_user(app, "stu", "stu-password", role="member")
    with app.app_context():
        core.addProject({"name": "lab"})
        core.addMember("lab", "stu")
    client = app.test_client()
    assert login(client, "stu", "stu-password").status_code == 302
    return client


CLUSTER_CARDS = ('id="card-hosts"', 'id="card-cpus"', 'id="card-memory"', 'href="/hosts/')


def test_a_members_overview_shows_their_vms_and_nothing_of_the_cluster(app, host, image):
    member = _member_of_lab(app)
    gen_vm(app, image, "v1", project="lab")
    gen_vm(app, image, "other")  # in default: not stu's
    page = member.get("/").get_data(as_text=True)
    assert 'id="card-vms"' in page and 'data-field="vms" data-format="text" href="/vms/">1<' in page
    assert [card for card in CLUSTER_CARDS if card in page] == []


def test_admins_and_operators_keep_the_cluster_cards(admin_client, operator_client, host):
    for client in (admin_client, operator_client):
        page = client.get("/").get_data(as_text=True)
        assert [card for card in CLUSTER_CARDS if card not in page] == []


def test_a_members_projects_pages_show_no_membership(app, admin_client):
    member = _member_of_lab(app)
    listed = member.get("/projects/").get_data(as_text=True)
    assert 'data-project="lab"' in listed and "<th>Members</th>" not in listed
    page = member.get("/projects/lab").get_data(as_text=True)
    assert "VMs: 0 used, no limit" in " ".join(page.split()) and 'id="members"' not in page
    # an admin sees stu in both
    assert "<th>Members</th>" in admin_client.get("/projects/").get_data(as_text=True)
    assert 'data-member="stu"' in admin_client.get("/projects/lab").get_data(as_text=True)


def test_an_operator_opens_a_projects_page(app, operator_client):
    with app.app_context():
        core.addProject({"name": "lab"})
    page = operator_client.get("/projects/lab")
    assert page.status_code == 200 and 'id="member-form"' not in page.get_data(as_text=True)


def test_a_member_sees_images_counting_their_vms_only_and_no_managing_forms(
    app, admin_client, host, image
):
    member = _member_of_lab(app)
    gen_vm(app, image, "v1", project="lab")
    gen_vm(app, image, "other")  # in default: not stu's
    forms = ('id="upload-form"', 'id="build-form"', "/delete")
    page = member.get("/images/").get_data(as_text=True)
    assert f'image+%3D+%22{image}%22">1</a>' in page  # the link to those VMs: stu's one
    assert [form for form in forms if form in page] == []
    assert Api(app, make_token(app, "stu")).get(f"/images/{image}").get_json()["vms"] == 1
    page = admin_client.get("/images/").get_data(as_text=True)
    assert [form for form in forms if form not in page] == []
    assert Api(app, make_token(app, "admin")).get(f"/images/{image}").get_json()["vms"] == 2
