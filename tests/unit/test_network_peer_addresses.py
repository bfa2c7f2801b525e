"""A host whose data address is a host name, or of the other IP family, cannot carry VXLAN: it
is left out of the other hosts' peer lists (the host script refuses such a peer, so one such
host would otherwise stop every host's networks), and a VM on a network placed there is
refused with the reason."""

import pytest

from app import core
from app.db import get_db
from tests.factories import gen_prepared_host
from tests.unit.test_host_networks_plan import nn
from tests.unit.test_networks import network_runs


@pytest.fixture
def hosts(ctx):
    """h1 and h3 with IPv4 data addresses; h5 named by DNS, h6 on IPv6."""
    made = {}
    for name, address, data in (
        ("h1", "127.0.0.1", "198.18.0.2"),
        ("h3", "127.0.0.3", "198.18.0.3"),
        ("h5", "127.0.0.5", "lab5.example"),
        ("h6", "127.0.0.6", "2001:db8::6"),
    ):
        made[name] = gen_prepared_host(
            ctx, address=address, name=name, network="none", data_address=data
        )
    return made


def test_peers_are_the_other_hosts_ip_data_addresses_of_local_s_family(
    ctx, hosts, image, provisioner
):
    core.addNetwork({"name": "net1", "cidr": "10.20.0.0/24"})
    core.addVm({"id": "vm1", "image": image, "mem": 64, "host": "h1", "networks": ["net1"]})
    name, state = network_runs(provisioner)[-1]
    assert name == "h1" and state["networks"][0]["peers"] == ["198.18.0.3"]
    nn.parse_state(state)  # what the host's script accepts


def test_a_vm_on_a_network_is_refused_on_a_host_with_no_ip_data_address(
    ctx, hosts, image, provisioner
):
    core.addNetwork({"name": "net1", "cidr": "10.20.0.0/24"})
    with pytest.raises(core.OperationFailed, match="data address lab5.example is not an IP"):
        core.addVm({"id": "vm5", "image": image, "mem": 64, "host": "h5", "networks": ["net1"]})
    assert [run for run in network_runs(provisioner) if run[0] == "h5"] == []


def test_a_host_named_by_dns_still_takes_bridge_networks(ctx, hosts, image, provisioner):
    core.addNetwork({"name": "lan", "type": "bridge", "bridge": "br0", "cidr": "192.168.1.0/24"})
    core.addVm({"id": "vm5", "image": image, "mem": 64, "host": "h5", "networks": ["lan"]})
    nic = get_db().execute("SELECT id, mac FROM vm_nics WHERE vm_id = 'vm5'").fetchone()
    name, state = network_runs(provisioner)[-1]
    assert (name, state) == (
        "h5",
        {
            "local": None,
            "networks": [
                {
                    "type": "bridge",
                    "bridge": "br0",
                    "rules": [
                        {"protocol": "any", "source": "192.168.1.0/24"},
                        {"protocol": "tcp", "ports": [22, 22]},
                    ],
                    "ports": [{"tap": f"nt{nic['id']}", "mac": nic["mac"], "ip": "192.168.1.1"}],
                }
            ],
        },
    )
    nn.parse_state(state)
