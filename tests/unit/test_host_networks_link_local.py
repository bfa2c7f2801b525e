"""A Nube bridge has no address of its own, not even IPv6's automatic link-local one: with it,
every guest on the overlay reaches the host itself (its sshd and whatever else listens on ::,
and with an IPv6 underlay the VXLAN port of every other network) at fe80::...%eth0."""

from tests.unit.test_host_networks_plan import commands, host, link, nn, nvx, state, vxlan


def with_ipv6(entry, mode="eui64"):
    """A link as a kernel with IPv6 lists it (its address generation mode)."""
    return {**entry, "inet6_addr_gen_mode": mode}


def test_a_new_bridge_generates_no_link_local_address_before_it_goes_up():
    steps, _ = nn.plan(state(vxlan(peers=[])), host(with_ipv6(link("lo"))), [])
    made = commands(steps)
    add = made.index("ip link add nbr4100 mtu 1450 type bridge")
    assert made[add + 1] == "ip link set nbr4100 addrgenmode none"
    assert made.index("ip link set nbr4100 up") > add + 1


def test_an_existing_bridge_with_link_local_addresses_loses_them_once():
    links = host(with_ipv6(link("nbr4100", "bridge")), nvx())
    steps, _ = nn.plan(state(vxlan(peers=[])), links, [])
    assert commands(steps) == [
        "ip link set nbr4100 addrgenmode none",
        "ip -6 addr flush dev nbr4100 scope link",
    ]
    links = host(with_ipv6(link("nbr4100", "bridge"), "none"), nvx())
    assert nn.plan(state(vxlan(peers=[])), links, [])[0] == []


def test_a_host_without_ipv6_is_given_no_ipv6_setting():
    steps, _ = nn.plan(state(vxlan(peers=[])), host(link("lo")), [])
    assert not [step for step in commands(steps) if "addrgenmode" in step]
