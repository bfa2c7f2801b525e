"""A member's overview: their projects' VMs, and no card about the hosts or the cluster's
capacity (which they may not see, so would read as zero, with links to forbidden pages)."""

from app import core
from tests.conftest import login
from tests.factories import gen_user, gen_vm

CLUSTER_CARDS = ('id="card-hosts"', 'id="card-cpus"', 'id="card-memory"', 'href="/hosts/')


def test_a_members_overview_shows_their_vms_and_nothing_of_the_cluster(app, host, image):
    gen_user(app, "stu", "stu-password", role="member")
    with app.app_context():
        core.addProject({"name": "lab"})
        core.addMember("lab", "stu")
    gen_vm(app, image, "v1", project="lab")
    gen_vm(app, image, "other")  # in default: not stu's
    member = app.test_client()
    assert login(member, "stu", "stu-password").status_code == 302
    page = member.get("/").get_data(as_text=True)
    assert 'id="card-vms"' in page and 'data-field="vms" data-format="text" href="/vms/">1<' in page
    assert [card for card in CLUSTER_CARDS if card in page] == []


def test_admins_and_operators_keep_the_cluster_cards(admin_client, operator_client, host):
    for client in (admin_client, operator_client):
        page = client.get("/").get_data(as_text=True)
        assert [card for card in CLUSTER_CARDS if card not in page] == []
