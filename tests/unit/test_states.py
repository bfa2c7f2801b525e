"""One rule for a VM's state from its domain's (app/states.py), and every place that records
what a hypervisor reports uses it: the monitor, a re-check, the undo of a failed power action,
and the record of a migration, finished or failed. A paused domain was `running` in the first
two and `stopped` in the others."""

from types import SimpleNamespace

import libvirt
import pytest

from app import core
from app.db import get_db
from app.extensions import adapters
from app.repositories import hosts as hosts_repo
from app.repositories import vms as vms_repo
from app.services import migrate_work, monitor, operations, retry
from app.services.monitor import HostReading
from app.states import vm_state
from tests.factories import gen_host, gen_vm


@pytest.fixture
def host_fields():
    return {"network": "none"}


def test_the_rule():
    reported = ("running", "paused", "stopped", "other", None)
    assert [vm_state(state) for state in reported] == [
        "running",
        "running",
        "stopped",
        "stopped",
        "error",
    ]


def pause(vm_id):
    """Pause a domain of libvirt's test driver (the adapter has no pause), as a migration
    stopped at its switch-over, or someone on the host, leaves it."""
    conn = libvirt.open("test:///default")  # the process's one test hypervisor
    try:
        conn.lookupByName(vm_id).suspend()
    finally:
        conn.close()


@pytest.fixture
def paused(ctx, host, image):
    """vm1 on h1, its domain paused; recorded as it was before (running)."""
    gen_vm(ctx, image, "vm1", start=True)
    pause("vm1")
    return "vm1"


def state_of(vm_id):
    """The state Nube records for a VM."""
    return core.listVms(f"id = {vm_id}")[0]["state"]


def test_the_monitor_records_a_paused_domain_running(ctx, paused):
    vms_repo.set_state(get_db(), paused, "stopped")
    monitor.poll(ctx)
    assert state_of(paused) == "running"


def test_a_recheck_records_a_paused_domain_running(ctx, paused):
    vms_repo.set_state(get_db(), paused, "stopped")
    # the start's operation, as if it had failed: its page offers a re-check
    op_id = get_db().execute("SELECT MAX(id) FROM operations WHERE kind = 'vm.start'").fetchone()
    get_db().execute("UPDATE operations SET status = 'failed' WHERE id = ?", (op_id[0],))
    retry.recheck(op_id[0], "admin")
    assert state_of(paused) == "running"


def test_a_failed_start_records_a_paused_domain_running(ctx, paused, monkeypatch):
    vms_repo.set_state(get_db(), paused, "stopped")  # so that a start is allowed
    refuse = core.HostUnreachable("host h1 did not answer")
    monkeypatch.setattr(adapters().hypervisor, "start", lambda *_: (_ for _ in ()).throw(refuse))
    with pytest.raises(core.OperationFailed):
        core.startVm(paused)  # its undo reads the domain's state and records it
    assert state_of(paused) == "running"


def test_a_stop_does_not_take_a_paused_domain_for_a_stopped_one(ctx, paused, monkeypatch):
    # the guest cannot answer a shutdown request while paused: Nube forces it off
    monkeypatch.setattr(adapters().hypervisor, "shutdown", lambda *_: None)
    monkeypatch.setattr(adapters().hypervisor, "agent_shutdown", lambda *_: False)
    core.stopVm(paused)
    conn = libvirt.open("test:///default")
    try:
        assert not conn.lookupByName(paused).isActive()
    finally:
        conn.close()
    assert state_of(paused) == "stopped"
    log = [line["message"] for line in core_log("vm.stop")]
    assert "vm1 still running after 1s: forcing it off" in log


def test_a_removed_paused_domain_is_forced_off_first(ctx, paused):
    core.removeVm(paused)
    conn = libvirt.open("test:///default")
    try:
        assert paused not in conn.listDefinedDomains() + [d.name() for d in conn.listAllDomains()]
    finally:
        conn.close()
    assert "forcing vm1 off" in [line["message"] for line in core_log("vm.remove")]


def core_log(kind):
    """The log lines of the newest operation of a kind."""
    op_id = get_db().execute("SELECT MAX(id) FROM operations WHERE kind = ?", (kind,)).fetchone()
    return operations.log(op_id[0])


def test_after_a_failed_migration_a_paused_domain_is_running(ctx, paused):
    gen_host(ctx, address="127.0.0.2", name="h2", network="none")
    # h2 is the same test hypervisor: it "already has a domain named vm1", so the move fails
    # and its undo finds the VM still on h1, paused
    with pytest.raises(core.OperationFailed, match="already has a domain named vm1"):
        core.migrateVm(paused, "h2")
    vm = core.listVms(f"id = {paused}")[0]
    assert vm["host_name"] == "h1" and vm["state"] == "running"


def test_a_move_records_a_paused_domain_on_its_new_host_running(ctx, paused, host):
    vms_repo.set_state(get_db(), paused, "stopped")
    logged = []
    work = SimpleNamespace(hypervisor=adapters().hypervisor, conn=get_db(), log=logged.append)
    dst = dict(hosts_repo.get(get_db(), host["id"]))
    migrate_work._record_move(work, dict(vms_repo.get(get_db(), paused)), dst)
    assert state_of(paused) == "running" and logged == ["vm1 is on h1 now (paused)"]


def test_monitor_keeps_a_state_recorded_after_its_reading_began(app, host, image):
    with app.app_context():
        core.addVm({"id": "m1", "image": image, "mem": 64})
        core.startVm("m1")  # recorded now, after the stale reading below began
        conn = get_db()
        host_row = dict(conn.execute("SELECT * FROM hosts").fetchone())
        vm_rows = conn.execute("SELECT id, task, last_seen FROM vms").fetchall()
        monitor._apply_domains(conn, host_row["id"], vm_rows, {}, "2000-01-01T00:00:00Z")
        assert core.listVms()[0]["state"] == "running"
        assert HostReading(host_row).started == ""
