"""plays/files/nube_networks.py never removes or remakes a host device that merely bears one of
Nube's names (nbr<n>, nvx<n>) but is another kind of device (a bond, a VLAN, a veth: the
operator's). It runs as root on every host, and host_remove.yaml runs it with no network."""

import pytest

from tests.unit.test_host_networks_plan import LOCAL, commands, host, link, nn, nvx, state, vxlan


def test_stale_names_on_foreign_devices_are_kept_and_reported():
    links = host(
        link("nbr0", "bond"),  # the host's uplink, say
        link("nvx1", "vlan"),
        link("nbr2"),  # a plain device (no linkinfo)
        link("nbr3", "bridge"),
        nvx(3),
    )
    steps, kept = nn.plan(state(), links, [])
    assert commands(steps) == ["ip link del nvx3", "ip link del nbr3"]
    assert kept == [
        {"device": "nbr0", "reason": "not Nube's: a bond, not a bridge"},
        {"device": "nvx1", "reason": "not Nube's: a vlan, not a vxlan"},
        {"device": "nbr2", "reason": "not Nube's: a device, not a bridge"},
    ]


@pytest.mark.parametrize(
    "entry, message",
    [
        (link("nvx4100", "veth"), "nvx4100 exists and is not Nube's: a veth, not a vxlan"),
        (link("nbr4100", "macvlan"), "nbr4100 exists and is not Nube's: a macvlan, not a bridge"),
    ],
)
def test_a_wanted_name_held_by_a_foreign_device_is_refused(entry, message):
    with pytest.raises(nn.InvalidState, match=message):
        nn.check_host(state(vxlan(peers=[])), host(entry), {LOCAL})
