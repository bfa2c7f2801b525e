"""A project that still has networks is not removed: a clear refusal (the network rows refer to
it), never a database error."""

import pytest

from app import core


def test_a_project_with_a_network_is_refused_until_the_network_goes(ctx):
    core.addProject({"name": "p1"})
    core.addNetwork({"name": "n1", "cidr": "10.20.0.0/24", "project": "p1"})
    with pytest.raises(core.Conflict, match=r"project p1 still has 1 VM\(s\), volume\(s\) or net"):
        core.removeProject("p1")
    assert [n["project"] for n in core.listNetworks()] == ["p1"]
    core.removeNetwork("n1")
    core.removeProject("p1")
