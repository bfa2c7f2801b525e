"""The monitor on libvirt's test driver: one driver file per host, so hosts are distinct."""

import threading

import pytest

from app import core
from app.adapters import hypervisor as hypervisor_module
from app.db import get_db
from app.services import monitor
from tests.factories import gen_host
from tests.wait import join_all, wait_for

NODE_XML = (
    "<node><cpu><mhz>2000</mhz><model>i686</model><nodes>1</nodes><sockets>1</sockets>"
    "<cores>4</cores><threads>1</threads></cpu><memory>{kib}</memory></node>"
)


@pytest.fixture
def nodes(tmp_path):
    """The folder of test driver files, one per host address."""
    folder = tmp_path / "nodes"
    folder.mkdir()
    return folder


@pytest.fixture
def config_overrides(nodes):
    """Every host gets its own test driver file named by its address."""
    return {
        "LIBVIRT_URI": f"test://{nodes}/{{address}}.xml",
        "HOST_TIMEOUT": 2,
        "MONITOR_MISSES": 3,
    }


def add_host(app, nodes, name, mib=4096):
    """A ready host backed by its own driver file."""
    (nodes / f"{name}.test.xml").write_text(NODE_XML.format(kib=mib * 1024))
    return gen_host(app, address=f"{name}.test", name=name, network="none")


def vm_states(app):
    """{vm id: state} as the database says."""
    with app.app_context():
        return {vm["id"]: vm["state"] for vm in core.listVms()}


def host_states(app):
    """{host name: state} as the database says."""
    with app.app_context():
        return {host["name"]: host["state"] for host in core.listHosts()}


def drift_found():
    """{(kind, name)} of the monitor's drift findings, read from its table."""
    return {tuple(row) for row in get_db().execute("SELECT kind, name FROM drift")}


def test_pass_records_power_state_and_last_seen(app, nodes, image):
    add_host(app, nodes, "a")
    add_host(app, nodes, "b")
    with app.app_context():
        core.addVm({"id": "va", "image": image, "mem": 64, "host": "a"})
        core.addVm({"id": "vb", "image": image, "mem": 64, "host": "b"})
        core.startVm("va")
        # the domain stops behind Nube's back; the database still says running
        app.extensions["nube"].hypervisor.force_off(
            dict(get_db().execute("SELECT * FROM hosts WHERE name = 'a'").fetchone()), "va"
        )
    assert vm_states(app)["va"] == "running"
    assert monitor.poll(app) == {"a": "ok", "b": "ok"}
    assert vm_states(app) == {"va": "stopped", "vb": "stopped"}
    with app.app_context():
        assert all(vm["last_seen"] for vm in core.listVms())
        assert all(host["last_seen"] for host in core.listHosts())


def test_unreachable_host_marks_vms_unknown_then_recovers(app, nodes, image):
    add_host(app, nodes, "a")
    add_host(app, nodes, "b")
    with app.app_context():
        core.addVm({"id": "va", "image": image, "mem": 64, "host": "a"})
        core.addVm({"id": "vb", "image": image, "mem": 64, "host": "b"})
    with app.app_context():
        host_a = dict(get_db().execute("SELECT * FROM hosts WHERE name = 'a'").fetchone())
    app.extensions["nube"].hypervisor.close(host_a)
    (nodes / "a.test.xml").rename(nodes / "a.test.gone")  # host a stops answering
    for _ in range(2):  # one or two silent readings: a busy host, not yet a dead one
        result = monitor.poll(app)
        assert result["b"] == "ok" and result["a"] != "ok"
        assert host_states(app) == {"a": "ready", "b": "ready"}
        assert vm_states(app) == {"va": "stopped", "vb": "stopped"}
    monitor.poll(app)  # the third in a row (MONITOR_MISSES)
    assert host_states(app) == {"a": "unreachable", "b": "ready"}
    assert vm_states(app) == {"va": "unknown", "vb": "stopped"}  # never "stopped" for a
    (nodes / "a.test.gone").rename(nodes / "a.test.xml")
    monitor.poll(app)
    assert host_states(app) == {"a": "ready", "b": "ready"}
    # a test driver file starts empty again, so va's domain is now missing: reported, kept
    assert vm_states(app)["va"] == "error"
    with app.app_context():
        assert drift_found() == {("missing_domain", "va")}


def test_hung_host_does_not_delay_healthy_ones(app, nodes, image, monkeypatch):
    add_host(app, nodes, "healthy")
    add_host(app, nodes, "hung")
    hypervisor = app.extensions["nube"].hypervisor
    hypervisor.close()
    release = threading.Event()
    real_open = hypervisor_module.libvirt.open

    def open_maybe_hanging(uri):
        if "hung.test" in uri:
            release.wait(30)
        return real_open(uri)

    monkeypatch.setattr(hypervisor_module.libvirt, "open", open_maybe_hanging)
    with app.app_context():
        get_db().execute("UPDATE hosts SET last_seen = NULL")

    def healthy_seen():
        with app.app_context():
            return (
                get_db().execute("SELECT last_seen FROM hosts WHERE name = 'healthy'").fetchone()[0]
            )

    passing = threading.Thread(target=monitor.poll, args=(app,), name="monitor.poll")
    passing.start()
    try:
        # the healthy host was updated while the hung host's call was still blocked
        wait_for(healthy_seen, timeout=10, interval=0.05, message="the healthy host's last_seen")
        assert not release.is_set()
    finally:
        passing.join(10)
        release.set()
    join_all([passing], timeout=1, message="the monitor's poll")
    assert host_states(app) == {"healthy": "ready", "hung": "ready"}  # one miss of three
    with app.app_context():
        misses = get_db().execute("SELECT name, misses FROM hosts ORDER BY name").fetchall()
    assert [tuple(row) for row in misses] == [("healthy", 0), ("hung", 1)]


def test_drift_is_reported_not_acted_on(app, nodes, image):
    host = add_host(app, nodes, "a")
    with app.app_context():
        core.addVm({"id": "known", "image": image, "mem": 64})
        core.addVm({"id": "vanishing", "image": image, "mem": 64})
        hypervisor = app.extensions["nube"].hypervisor
        row = dict(get_db().execute("SELECT * FROM hosts WHERE id = ?", (host["id"],)).fetchone())
        hypervisor.undefine(row, "vanishing")
        hypervisor.define(
            row,
            "<domain type='test'><name>stranger</name>"
            "<memory>65536</memory><os><type>hvm</type></os></domain>",
        )
    monitor.poll(app)
    with app.app_context():
        assert drift_found() == {("missing_domain", "vanishing"), ("unknown_domain", "stranger")}
        assert {vm["id"] for vm in core.listVms()} == {"known", "vanishing"}  # nothing deleted
        assert hypervisor.domain_state(row, "stranger") == "stopped"  # nothing touched
    assert vm_states(app)["vanishing"] == "error"


def test_vm_with_a_task_is_left_to_its_operation(app, nodes, image):
    add_host(app, nodes, "a")
    with app.app_context():
        core.addVm({"id": "busy", "image": image, "mem": 64})
        get_db().execute("UPDATE vms SET task = 'starting', task_op = 99, state = 'running'")
    monitor.poll(app)
    assert vm_states(app)["busy"] == "running"


def test_a_busy_host_that_answers_late_is_never_unreachable(app, nodes, image, monkeypatch):
    """Readings that time out, while the host still answers them late, are a slow host: it
    stays ready and its VMs keep their state, however many readings miss."""
    add_host(app, nodes, "busy")
    with app.app_context():
        core.addVm({"id": "vbusy", "image": image, "mem": 64, "host": "busy"})
    hypervisor = app.extensions["nube"].hypervisor
    monkeypatch.setattr(hypervisor, "timeout", 0.3)
    real_stats = hypervisor_module.libvirt.virConnect.getAllDomainStats
    late = []

    def slow_stats(conn, *args, **kwargs):
        threading.Event().wait(0.6)  # twice the timeout: the caller has given up
        late.append(True)
        return real_stats(conn, *args, **kwargs)

    monkeypatch.setattr(hypervisor_module.libvirt.virConnect, "getAllDomainStats", slow_stats)
    for n in range(5):
        assert monitor.poll(app)["busy"] != "ok"
        wait_for(lambda n=n: len(late) > n, timeout=5, message="the late answer")
    assert host_states(app) == {"busy": "ready"}
    assert vm_states(app) == {"vbusy": "stopped"}
    with app.app_context():
        assert core.listHosts()[0]["state"] == "ready"
