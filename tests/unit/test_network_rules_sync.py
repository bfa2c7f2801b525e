"""How a network's rules reach its hosts: only a filtering network's rules are sent (one that
lets in anything from anywhere is no filter), a rules change is applied even when the host's
state looks unchanged (a reboot may have lost it), a state changed while a play ran is applied
after it, and a VM on a bridge network makes its start sync its host (the host bridge outlives
a reboot, its rules do not)."""

import pytest

from app import core
from app.db import get_db, transaction
from app.ops import kinds
from app.ops.claims import Target
from app.ops.request import record
from app.ops.runner import execute
from app.repositories import hosts as hosts_repo
from app.repositories import networks as networks_repo
from app.repositories import vms as vms_repo
from tests.factories import gen_prepared_host


@pytest.fixture
def host(app):
    """A ready host with its sudo password stored: the network play needs it."""
    return gen_prepared_host(app, network="none", data_address="198.18.0.2")


def network_runs(provisioner):
    """The host_networks.yaml runs so far: [(host name, state)]."""
    return [
        (run.host["name"], run.extravars["nube_networks"])
        for run in provisioner.runs
        if run.playbook == "host_networks.yaml"
    ]


def test_a_network_open_to_all_sends_no_rules(ctx, host, image, provisioner):
    core.addNetwork({"name": "open", "cidr": "10.20.0.0/24", "rules": ["any from any", "tcp/22"]})
    core.addVm({"id": "vm1", "image": image, "mem": 64, "networks": ["open"]})
    [(_, state)] = network_runs(provisioner)
    assert "rules" not in state["networks"][0] and state["networks"][0]["zone"] == 1


def test_the_same_rules_given_again_are_applied_again(ctx, host, image, provisioner):
    core.addNetwork({"name": "net1", "cidr": "10.20.0.0/24"})
    core.addVm({"id": "vm1", "image": image, "mem": 64, "networks": ["net1"]})
    rules = core.listNetworks()[0]["rules"]
    core.updateNetwork("net1", {"rules": rules})
    runs = network_runs(provisioner)
    assert len(runs) == 2 and runs[0] == runs[1]  # forced: the host may have lost them


def test_a_state_changed_while_a_play_runs_is_applied_after_it(
    ctx, host, image, provisioner, monkeypatch
):
    core.addNetwork({"name": "net1", "cidr": "10.20.0.0/24"})
    network_id = networks_repo.get(get_db(), "net1")["id"]
    original = provisioner.run

    def run(playbook, **kwargs):
        result = original(playbook, **kwargs)
        if playbook == "host_networks.yaml" and len(network_runs(provisioner)) == 1:
            # another operation's rules change lands while this play runs
            with transaction(get_db()):
                networks_repo.set_rules(
                    get_db(), network_id, '[{"protocol":"icmp","source":"any"}]'
                )
        return result

    monkeypatch.setattr(provisioner, "run", run)
    core.addVm({"id": "vm1", "image": image, "mem": 64, "networks": ["net1"]})
    runs = network_runs(provisioner)
    assert len(runs) == 2
    assert runs[0][1]["networks"][0]["rules"][1] == {"protocol": "tcp", "ports": [22, 22]}
    assert runs[1][1]["networks"][0]["rules"] == [{"protocol": "icmp"}]


def test_a_vm_on_a_bridge_network_syncs_its_host_at_each_start(ctx, host, image, provisioner):
    core.addNetwork({"name": "lan", "type": "bridge", "bridge": "br0", "cidr": "192.168.1.0/24"})
    core.addNetwork({"name": "net1", "cidr": "10.20.0.0/24"})
    core.addVm({"id": "vm1", "image": image, "mem": 64, "networks": ["net1"]})
    core.startVm("vm1")
    core.stopVm("vm1")
    core.startVm("vm1")
    assert len(network_runs(provisioner)) == 1  # an overlay's bridge goes with a reboot: no
    core.addVm({"id": "vm2", "image": image, "mem": 64, "networks": ["lan"]})
    before = len(network_runs(provisioner))
    core.startVm("vm2")
    core.stopVm("vm2")
    core.startVm("vm2")
    assert len(network_runs(provisioner)) == before + 2


def test_a_new_data_address_reaches_the_hosts_with_networks(ctx, host, image, provisioner):
    other = gen_prepared_host(
        ctx, address="127.0.0.3", name="h3", network="none", data_address="198.18.0.3"
    )
    core.updateHost(other["id"], {"data_address": "198.18.0.9"})
    assert kinds_run() == []  # no host has a network: nothing to tell
    core.addNetwork({"name": "net1", "cidr": "10.20.0.0/24"})
    core.addVm({"id": "vm1", "image": image, "mem": 64, "host": "h1", "networks": ["net1"]})
    assert network_runs(provisioner)[-1][1]["networks"][0]["peers"] == ["198.18.0.9"]
    core.updateHost(other["id"], {"data_address": "198.18.0.4"})
    assert network_runs(provisioner)[-1][1]["networks"][0]["peers"] == ["198.18.0.4"]
    assert kinds_run() == [("peers.update", "h3", "succeeded")]


def kinds_run():
    """The peers.update operations so far: [(kind, target, status)]."""
    rows = get_db().execute(
        "SELECT kind, target_name, status FROM operations WHERE kind = 'peers.update'"
    )
    return [tuple(row) for row in rows]


def test_a_vm_being_moved_keeps_its_ports_on_its_destination_whoever_syncs_it(
    ctx, host, image, provisioner
):
    gen_prepared_host(
        ctx, address="127.0.0.3", name="h3", network="none", data_address="198.18.0.3"
    )
    core.addNetwork({"name": "net1", "cidr": "10.20.0.0/24"})
    core.addVm({"id": "vm1", "image": image, "mem": 64, "host": "h1", "networks": ["net1"]})
    core.startVm("vm1")
    h3 = get_db().execute("SELECT id FROM hosts WHERE name = 'h3'").fetchone()[0]
    # vm1 is on its way to h3 (a drain moving two VMs there at once) when vm2 is made there
    with transaction(get_db()):
        vms_repo.set_moving_to(get_db(), "vm1", h3)
    core.addVm({"id": "vm2", "image": image, "mem": 64, "host": "h3", "networks": ["net1"]})
    name, state = network_runs(provisioner)[-1]
    assert name == "h3" and [p["ip"] for p in state["networks"][0]["ports"]] == [
        "10.20.0.1",
        "10.20.0.2",
    ]
    # a move that fails (the test driver cannot migrate) leaves vm1 on h1 and takes its port
    # off h3 again
    with pytest.raises(core.OperationFailed, match="host h3 already has a domain named vm1"):
        core.migrateVm("vm1", "h3")
    assert get_db().execute("SELECT moving_to FROM vms WHERE id = 'vm1'").fetchone()[0] is None
    name, state = network_runs(provisioner)[-1]
    assert name == "h3" and [p["ip"] for p in state["networks"][0]["ports"]] == ["10.20.0.2"]


def test_a_new_data_address_is_taken_while_the_host_has_another_operation(
    ctx, host, image, provisioner
):
    other = gen_prepared_host(
        ctx, address="127.0.0.3", name="h3", network="none", data_address="198.18.0.3"
    )
    core.addNetwork({"name": "net1", "cidr": "10.20.0.0/24"})
    core.addVm({"id": "vm1", "image": image, "mem": 64, "host": "h1", "networks": ["net1"]})
    with transaction(get_db()):  # a re-check of h3 waits in the queue
        record(get_db(), kinds.HOST_RECHECK, dict(hosts_repo.get(get_db(), other["id"])), "admin")
        pending = record(get_db(), kinds.PEERS_UPDATE, Target("peers", "hosts", "h3"), "admin")
    core.updateHost(other["id"], {"data_address": "198.18.0.5", "name": "h3b"})
    # taken, renamed too; the pending peers.update reads the new address when it runs
    assert [h["name"] for h in core.listHosts()] == ["h1", "h3b"]
    assert [op[0] for op in kinds_run()] == ["peers.update"]
    assert execute(pending, ctx)["status"] == "succeeded"
    assert network_runs(provisioner)[-1][1]["networks"][0]["peers"] == ["198.18.0.5"]
