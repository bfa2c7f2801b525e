"""Virtual networks through the Python API: definitions, addresses (IPAM), NICs in the domain
and the seed, and the host play that makes and removes them (the recording provisioner)."""

import threading
import xml.etree.ElementTree as ET

import pytest
import yaml

from app import cloudinit, core
from app.db import get_db
from app.domain_xml import render_domain
from app.extensions import adapters
from app.ops.queue import queue_of
from app.ops.runner import execute
from tests.api_client import Api, make_token
from tests.factories import gen_host, gen_prepared_host, gen_user

TEMPLATES = "domain_templates"


@pytest.fixture
def host(app):
    """A ready host with its sudo password stored: the network play needs it."""
    return gen_prepared_host(app, network="none", data_address="198.18.0.2")


# net1 (10.20.0.0/24, the default rules) as a host with one peer gets it
VXLAN_100 = {
    "type": "vxlan",
    "vni": 100,
    "peers": ["198.18.0.3"],
    "mtu": 1450,
    "zone": 1,
    "rules": [
        {"protocol": "any", "source": "10.20.0.0/24"},
        {"protocol": "tcp", "ports": [22, 22]},
    ],
}


def ports(*vm_ids):
    """The ports a host's state names for these VMs' NICs: [{tap, mac, ip}] by NIC id."""
    marks = ", ".join("?" for _ in vm_ids)
    rows = get_db().execute(
        f"SELECT id, mac, ip FROM vm_nics WHERE vm_id IN ({marks}) ORDER BY id", vm_ids
    )
    return [{"tap": f"nt{row[0]}", "mac": row[1], "ip": row[2]} for row in rows]


def network_runs(provisioner):
    """The host_networks.yaml runs so far: [(host name, state)]."""
    return [
        (run.host["name"], run.extravars["nube_networks"])
        for run in provisioner.runs
        if run.playbook == "host_networks.yaml"
    ]


def count(table):
    """Rows in a table."""
    return get_db().execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def test_a_vxlan_network_gets_the_next_vni_and_counts_its_addresses(ctx):
    net = core.addNetwork(
        {"name": "net1", "cidr": "10.20.0.0/24", "gateway": "10.20.0.1", "dns": ["10.20.0.1"]}
    )
    assert net["type"] == "vxlan" and net["vni"] == 100 and net["bridge"] == "nbr100"
    assert net["range"] == "10.20.0.1-10.20.0.254" and net["mtu"] == 1450
    assert (net["used"], net["free"]) == (0, 253)  # 254 host addresses less the gateway
    assert net["dns"] == ["10.20.0.1"] and net["project"] == "default"
    second = core.addNetwork(
        {"name": "net2", "cidr": "10.21.0.0/26", "range": "10.21.0.10-10.21.0.19"}
    )
    assert second["vni"] == 101 and second["free"] == 10
    assert [n["name"] for n in core.listNetworks()] == ["net1", "net2"]
    assert [n["name"] for n in core.listNetworks("vni = 101")] == ["net2"]
    with pytest.raises(core.Conflict, match="a network named net1 already exists"):
        core.addNetwork({"name": "net1", "cidr": "10.30.0.0/24"})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cidr": "10.20.0.0/24", "name": "bad name"}, "network name must be"),
        ({"cidr": "10.20.0.1/24"}, "is not a network"),
        ({"cidr": "8.8.8.0/24"}, "not a private range"),
        ({"cidr": "fd00::/64"}, "IPv6"),
        ({"cidr": "10.0.0.0/8"}, "prefix must be from /16 to /29"),
        ({"cidr": "10.20.0.0/24", "gateway": "10.21.0.1"}, "gateway 10.21.0.1 is not a host"),
        ({"cidr": "10.20.0.0/24", "dns": ["one.one"]}, "is not an IPv4 address"),
        ({"cidr": "10.20.0.0/24", "range": "10.20.0.9-10.20.0.3"}, "is empty"),
        ({"cidr": "10.20.0.0/24", "range": "10.20.0.9"}, "FIRST-LAST"),
        ({"cidr": "10.20.0.0/24", "type": "vlan"}, "type must be one of vxlan, bridge"),
        ({"cidr": "10.20.0.0/24", "type": "bridge"}, "names the hosts' existing bridge"),
        ({"cidr": "10.20.0.0/24", "type": "bridge", "bridge": "nbr7"}, "existing bridge"),
        ({"cidr": "10.20.0.0/24", "bridge": "br0"}, "bridge is for networks of type bridge"),
        ({"cidr": "10.20.0.0/24", "mtu": 100}, "mtu"),
        ({"cidr": "10.20.0.0/24", "colour": "red"}, "colour"),
        ({"cidr": "10.20.0.0/24", "project": "nowhere"}, "project nowhere not found"),
    ],
)
def test_bad_network_input_is_refused_and_changes_nothing(ctx, fields, message):
    with pytest.raises((core.InvalidInput, core.NotFound), match=message):
        core.addNetwork({"name": "net1", **fields})
    assert core.listNetworks() == [] and count("audit") == 0


def test_a_bridge_network_names_the_hosts_bridge_and_only_operators_define_one(app, ctx):
    gen_user(app, "ana", role="member")
    core.addProject({"name": "lab"})
    core.addMember("lab", "ana")
    with core.acting_as("ana"), pytest.raises(core.NubeError, match="manage hosts"):
        core.addNetwork(
            {"name": "lan", "type": "bridge", "bridge": "br0", "cidr": "192.168.1.0/24"}
        )
    lan = core.addNetwork(
        {"name": "lan", "type": "bridge", "bridge": "br0", "cidr": "192.168.1.0/24"}
    )
    assert (lan["vni"], lan["bridge"], lan["mtu"]) == (None, "br0", None)


def test_a_vms_nics_get_addresses_in_order_or_the_one_asked_for(ctx, host, image, provisioner):
    core.addNetwork({"name": "net1", "cidr": "10.20.0.0/24", "gateway": "10.20.0.1"})
    core.addNetwork({"name": "net2", "cidr": "10.30.0.0/24"})
    vm = core.addVm(
        {
            "id": "vm1",
            "image": image,
            "mem": 64,
            "networks": ["net1", {"network": "net2", "ip": "10.30.0.50"}],
        }
    )
    assert vm["ip"] == "10.20.0.2"  # the gateway is never handed out
    assert [(n["network"], n["ip"]) for n in vm["networks"]] == [
        ("net1", "10.20.0.2"),
        ("net2", "10.30.0.50"),
    ]
    macs = [n["mac"] for n in vm["networks"]]
    assert len(set(macs)) == 2 and all(m.startswith("52:54:") for m in macs)
    second = core.addVm({"id": "vm2", "image": image, "mem": 64, "networks": ["net1"]})
    assert second["ip"] == "10.20.0.3"
    assert [v["id"] for v in core.listVms("ip = 10.20.0.3")] == ["vm2"]
    assert core.listVms("id = vm1")[0]["networks"] == vm["networks"]  # lists carry them too
    net1 = core.listNetworks("name = net1")[0]
    assert (net1["used"], net1["free"]) == (2, 251)


@pytest.mark.parametrize(
    ("nic", "error", "message"),
    [
        ({"network": "net1", "ip": "10.20.0.2"}, core.Conflict, "10.20.0.2 is already in use"),
        ({"network": "net1", "ip": "10.20.0.1"}, core.InvalidInput, "is network net1's gateway"),
        ({"network": "net1", "ip": "10.99.0.5"}, core.InvalidInput, "not a host address of"),
        ({"network": "net1", "ip": "10.20.0.255"}, core.InvalidInput, "not a host address of"),
        ({"network": "net1", "ip": "10.20.0.200"}, core.InvalidInput, "outside the range"),
        ({"network": "nope"}, core.NotFound, "network nope not found"),
        ({"network": "net1", "mac": "x"}, core.InvalidInput, "must be a network name or"),
        (7, core.InvalidInput, "must be a network name or"),
    ],
)
def test_a_refused_nic_leaves_no_vm_and_no_address(ctx, host, image, nic, error, message):
    core.addNetwork(
        {
            "name": "net1",
            "cidr": "10.20.0.0/24",
            "gateway": "10.20.0.1",
            "range": "10.20.0.1-10.20.0.100",
        }
    )
    core.addVm({"id": "vm1", "image": image, "mem": 64, "networks": ["net1"]})
    with pytest.raises(error, match=message):
        core.addVm({"id": "vm2", "image": image, "mem": 64, "networks": [nic]})
    assert [v["id"] for v in core.listVms()] == ["vm1"]
    assert count("vm_nics") == 1
    assert not (adapters().storage.vms_dir / "vm2.qcow2").exists()


def test_a_vm_uses_only_its_own_projects_networks(app, ctx, host, image):
    core.addProject({"name": "lab"})
    core.addNetwork({"name": "labnet", "cidr": "10.20.0.0/24", "project": "lab"})
    with pytest.raises(core.NotFound, match="network labnet not found in project default"):
        core.addVm({"id": "vm1", "image": image, "mem": 64, "networks": ["labnet"]})
    gen_user(app, "ana", role="member")
    with core.acting_as("ana"):
        assert core.listNetworks() == []  # a member of no project sees none
        with pytest.raises(core.NotFound):
            core.removeNetwork("labnet")
    assert count("networks") == 1


def test_the_sixty_third_vm_on_a_network_of_62_addresses_is_refused(ctx, host, image):
    core.addNetwork({"name": "small", "cidr": "10.40.0.0/26"})  # no gateway: 62 addresses
    for n in range(62):
        core.addVm({"id": f"v{n:02d}", "image": image, "mem": 16, "networks": ["small"]})
    with pytest.raises(core.Conflict, match="network small has no free address: all 62 addresses"):
        core.addVm({"id": "v62", "image": image, "mem": 16, "networks": ["small"]})
    assert len(core.listVms()) == 62
    assert core.listNetworks()[0]["free"] == 0


def test_fifty_vms_created_at_once_get_fifty_distinct_addresses(app, host, image, monkeypatch):
    """50 creations at once through the API (threads, each its own client and connection),
    the operations queued for a worker that runs them once the requests are answered (the
    unit tier's immediate queue would run 50 at once in the request threads, past one
    process's PostgreSQL pool)."""
    with app.app_context():
        core.addNetwork({"name": "small", "cidr": "10.40.0.0/26"})
    queued = []
    monkeypatch.setattr(queue_of(app), "enqueue", queued.append)
    token = make_token(app)
    start = threading.Barrier(50)
    answers = [None] * 50

    def create(n):
        api = Api(app, token)
        start.wait()
        body = {"id": f"c{n:02d}", "image": image, "mem": 16, "networks": ["small"]}
        answers[n] = api.post("/vms", body)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [202] * 50, [a.get_json() for a in answers]
    for op_id in queued:  # the worker
        assert execute(op_id, app)["status"] == "succeeded"
    with app.app_context():
        addresses = [vm["ip"] for vm in core.listVms()]
    assert len(addresses) == 50 and len(set(addresses)) == 50
    assert set(addresses) == {f"10.40.0.{n}" for n in range(1, 51)}  # the lowest ones


def test_the_host_gets_the_network_with_its_first_vm_and_loses_it_with_its_last(
    ctx, host, image, provisioner
):
    other = gen_prepared_host(
        ctx, address="127.0.0.3", name="h3", network="none", data_address="198.18.0.3"
    )
    core.addNetwork({"name": "net1", "cidr": "10.20.0.0/24"})
    core.addVm({"id": "plain", "image": image, "mem": 64, "host": "h1"})
    assert network_runs(provisioner) == []  # a VM on no network costs no play
    core.addVm({"id": "vm1", "image": image, "mem": 64, "host": "h1", "networks": ["net1"]})
    one = ports("vm1")
    core.addVm({"id": "vm2", "image": image, "mem": 64, "host": "h1", "networks": ["net1"]})
    both = ports("vm1", "vm2")
    core.startVm("vm1")
    core.stopVm("vm1")
    core.startVm("vm1")
    # a play for each VM placed (its port), none for a start or a stop
    assert network_runs(provisioner) == [
        ("h1", {"local": "198.18.0.2", "networks": [{**VXLAN_100, "ports": one}]}),
        ("h1", {"local": "198.18.0.2", "networks": [{**VXLAN_100, "ports": both}]}),
    ]
    core.removeVm("vm1")
    assert network_runs(provisioner)[-1][1]["networks"][0]["ports"] == both[1:]  # vm2's left
    core.removeVm("vm2")
    assert network_runs(provisioner)[-1] == ("h1", {"local": "198.18.0.2", "networks": []})
    core.removeVm("plain")
    assert len(network_runs(provisioner)) == 4 and other["name"] == "h3"


def test_hosts_coming_and_going_update_the_peers_of_hosts_with_networks(
    ctx, host, image, provisioner
):
    core.addNetwork({"name": "net1", "cidr": "10.20.0.0/24"})
    core.addVm({"id": "vm1", "image": image, "mem": 64, "networks": ["net1"]})
    assert network_runs(provisioner)[-1][1]["networks"][0]["peers"] == []
    h3 = gen_prepared_host(
        ctx, address="127.0.0.3", name="h3", network="none", data_address="198.18.0.3"
    )
    assert network_runs(provisioner)[-1] == (
        "h1",
        {"local": "198.18.0.2", "networks": [{**VXLAN_100, "ports": ports("vm1")}]},
    )
    core.removeHost(h3["id"])
    assert network_runs(provisioner)[-1][1]["networks"][0]["peers"] == []
    gen_host(ctx, address="127.0.0.4", name="h4", network="none")  # unprepared: its address
    assert network_runs(provisioner)[-1][1]["networks"][0]["peers"] == ["127.0.0.4"]


def test_a_failed_network_play_fails_the_vm_creation_and_leaves_nothing(
    ctx, host, image, provisioner
):
    core.addNetwork({"name": "net1", "cidr": "10.20.0.0/24"})
    provisioner.fail["host_networks.yaml"] = "bridge br0 does not exist"
    with pytest.raises(core.OperationFailed, match="bridge br0 does not exist"):
        core.addVm({"id": "vm1", "image": image, "mem": 64, "networks": ["net1"]})
    assert core.listVms() == [] and count("vm_nics") == 0
    # applied again by the next sync, whatever it wants (even nothing: leftovers go)
    assert get_db().execute("SELECT networks_state FROM hosts").fetchone()[0] == ""
    provisioner.fail.clear()
    core.removeNetwork("net1")
    core.addVm({"id": "plain", "image": image, "mem": 64})
    assert network_runs(provisioner)[-1] == ("h1", {"local": "198.18.0.2", "networks": []})


def test_a_network_in_use_is_not_removed(ctx, host, image):
    core.addNetwork({"name": "net1", "cidr": "10.20.0.0/24"})
    core.addVm({"id": "vm1", "image": image, "mem": 64, "networks": ["net1"]})
    with pytest.raises(
        core.Conflict, match=r"network net1 is in use by 1 VM \(vm1\): remove them first"
    ):
        core.removeNetwork("net1")
    core.removeVm("vm1")
    core.removeNetwork("net1")
    assert core.listNetworks() == [] and count("vm_nics") == 0
    actions = [r[0] for r in get_db().execute("SELECT action FROM audit ORDER BY id")]
    assert actions[-1] == "network.remove" and "network.create" in actions


def test_the_domain_plugs_each_nic_into_its_networks_bridge(ctx, host, image):
    core.addNetwork({"name": "net1", "cidr": "10.20.0.0/24"})
    core.addNetwork({"name": "lan", "type": "bridge", "bridge": "br0", "cidr": "192.168.1.0/24"})
    vm = core.addVm({"id": "vm1", "image": image, "mem": 64, "networks": ["net1", "lan"]})
    xml = adapters().hypervisor.definition(host, "vm1")
    interfaces = ET.fromstring(xml).findall("devices/interface")
    assert [i.find("source").get("bridge") for i in interfaces] == ["nbr100", "br0"]
    assert [i.find("mac").get("address") for i in interfaces] == [n["mac"] for n in vm["networks"]]
    assert interfaces[0].find("mtu").get("size") == "1450"
    assert interfaces[1].find("mtu") is None
    taps = [i.find("target").get("dev") for i in interfaces]
    assert all(t.startswith("nt") for t in taps) and len(set(taps)) == 2


def test_hostile_nic_values_are_refused_before_rendering():
    vm = {"id": "vm1", "mem": 64, "vcpus": 1}
    host = {"kvm": False, "network": "none"}
    good = {"mac": "52:54:00:aa:bb:cc", "bridge": "nbr100", "tap": "nt1", "mtu": 1450}
    for key, bad in [("mac", "52:54'/>"), ("bridge", "br0'/><x"), ("tap", "vnet0"), ("mtu", "9")]:
        with pytest.raises(core.InvalidInput):
            render_domain({**vm, "nics": [{**good, key: bad}]}, host, "/d.qcow2", TEMPLATES)


def test_the_seed_gives_each_nic_its_static_address():
    text = cloudinit.static_network_config(
        [
            {
                "mac": "52:54:00:00:00:01",
                "ip": "10.20.0.5",
                "prefix": 24,
                "gateway": "10.20.0.1",
                "dns": ["10.20.0.1"],
                "mtu": 1450,
            },
            {
                "mac": "52:54:00:00:00:02",
                "ip": "10.30.0.5",
                "prefix": 26,
                "gateway": "10.30.0.1",
                "dns": ["9.9.9.9"],
                "mtu": None,
            },
        ]
    )
    config = yaml.safe_load(text)["config"]
    assert config[0]["mac_address"] == "52:54:00:00:00:01" and config[0]["mtu"] == 1450
    assert config[0]["subnets"] == [
        {"type": "static", "address": "10.20.0.5/24", "gateway": "10.20.0.1"}
    ]
    # one default route: the first NIC's gateway
    assert config[1]["subnets"] == [{"type": "static", "address": "10.30.0.5/26"}]
    assert config[2] == {"type": "nameserver", "address": ["10.20.0.1", "9.9.9.9"]}


def test_the_guest_view_names_the_addresses_the_guest_does_not_report(
    ctx, host, image, monkeypatch
):
    from app.adapters.guest_agent import GuestInfo
    from app.services import vms

    core.addNetwork({"name": "net1", "cidr": "10.20.0.0/24"})
    core.addNetwork({"name": "net2", "cidr": "10.30.0.0/24"})
    core.addVm(
        {"id": "vm1", "image": image, "mem": 64, "networks": ["net1", "net2"], "start": True}
    )
    seen = [{"interface": "eth0", "address": "10.20.0.1", "prefix": 24}]
    info = GuestInfo(os="Debian", kernel="6.1", hostname="vm1", addresses=seen)
    monkeypatch.setattr(adapters().hypervisor, "guest_info", lambda host, name: info)
    assert vms.guest("vm1")["missing_addresses"] == ["10.30.0.1"]
    seen.append({"interface": "eth1", "address": "10.30.0.1", "prefix": 24})
    assert vms.guest("vm1")["missing_addresses"] == []
