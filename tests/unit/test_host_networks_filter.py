"""plays/files/nube_networks.py's VXLAN port filter: planned from the state and the table as
it is (the integration tier applies it on a real kernel)."""

from tests.unit.test_host_networks_plan import nn, state, vxlan


def test_a_host_with_vxlan_networks_lets_only_their_peers_in():
    wanted = state(
        vxlan(4100, peers=["198.18.0.4", "198.18.0.3"]), vxlan(4101, peers=["198.18.0.5"])
    )
    [[command, ruleset]] = nn.filter_steps(wanted, None)
    assert command == "nft"
    assert "elements = { 198.18.0.3, 198.18.0.4, 198.18.0.5 }" in ruleset
    assert "udp dport 4789 counter drop" in ruleset
    # the table replaced whole, in one transaction: never a moment without the drop
    assert ruleset.startswith("table inet nube_vxlan\ndelete table inet nube_vxlan\n")


def test_the_filter_changes_only_when_the_peers_do():
    wanted = state(vxlan(4100, peers=["198.18.0.3", "198.18.0.4"]))
    assert nn.filter_steps(wanted, ["198.18.0.3", "198.18.0.4"]) == []
    [[_, ruleset]] = nn.filter_steps(wanted, ["198.18.0.3"])
    assert "198.18.0.4" in ruleset
    assert len(nn.filter_steps(wanted, [""])) == 1  # a table not as written is written again


def test_no_vxlan_network_no_filter():
    assert nn.filter_steps(state(), ["198.18.0.3"]) == [
        ["nft", "delete", "table", "inet", "nube_vxlan"]
    ]
    assert nn.filter_steps(state(), None) == []
    # a single host: nobody may send
    [[_, ruleset]] = nn.filter_steps(state(vxlan(peers=[])), None)
    assert "set peers4 { type ipv4_addr; }" in ruleset


def test_the_filter_stays_while_a_kept_vxlan_device_still_takes_packets():
    assert nn.filter_steps(state(), ["198.18.0.3"], vxlan_kept=True) == []
