"""A bridge network (VMs on the hosts' own LAN) is defined by those who manage hosts, and only
they remove it: a member of its project may use it, not take it away from the project."""

import pytest

from app import core
from tests.factories import gen_user


def test_a_member_uses_but_cannot_remove_the_projects_bridge_network(app, ctx):
    gen_user(app, "ana", role="member")
    core.addProject({"name": "lab"})
    core.addMember("lab", "ana")
    lan = {"name": "lan", "type": "bridge", "bridge": "br0", "cidr": "192.168.1.0/24"}
    core.addNetwork({**lan, "project": "lab"})
    with core.acting_as("ana"):
        assert [n["name"] for n in core.listNetworks()] == ["lan"]
        with pytest.raises(core.NubeError, match="members cannot see or manage hosts"):
            core.removeNetwork("lan")
        assert [n["name"] for n in core.listNetworks()] == ["lan"]
        core.addNetwork({"name": "own", "cidr": "10.20.0.0/24"})
        core.removeNetwork("own")  # their own overlay: theirs to remove
    core.removeNetwork("lan")
    assert core.listNetworks() == []
