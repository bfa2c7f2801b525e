"""A member reads who made a network as they read who made a VM or a volume: their own name,
or "another user" (other users' names are not a member's to read)."""

from app import core
from tests.factories import gen_user


def test_a_member_reads_another_user_for_networks_others_made(app, ctx):
    gen_user(app, "ana", role="member")
    core.addProject({"name": "lab"})
    core.addMember("lab", "ana")
    with core.acting_as("ana"):
        core.addNetwork({"name": "mine", "cidr": "10.30.0.0/24"})
    gen_user(app, "olga", role="operator")
    with core.acting_as("olga"):
        core.addNetwork({"name": "theirs", "cidr": "10.20.0.0/24", "project": "lab"})
    with core.acting_as("ana"):
        made = {n["name"]: n["created_by"] for n in core.listNetworks()}
    assert made == {"mine": "ana", "theirs": "another user"}
    with core.acting_as("olga"):
        made = {n["name"]: n["created_by"] for n in core.listNetworks()}
    assert made == {"mine": "ana", "theirs": "olga"}
