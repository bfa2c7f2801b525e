"""Migration as callers see it: refusals with the reason, the operation it starts, the page's
Migrate form. (libvirt's test driver cannot migrate: the integration tier moves real VMs.)"""

import pytest

from app import core
from app.db import get_db
from app.repositories import vms as vms_repo
from app.services import operations
from tests.conftest import csrf_token
from tests.factories import gen_host, gen_vm
from tests.html import page


@pytest.fixture
def host_fields():
    return {"network": "none"}


def test_nowhere_else_to_go(ctx, host, image):
    gen_vm(ctx, image, "vm1")
    with pytest.raises(core.InvalidInput, match="no other host to move VM vm1 to"):
        core.migrateVm("vm1")


def test_refusals_name_the_reason_and_change_nothing(ctx, host, image):
    gen_vm(ctx, image, "vm1")
    gen_host(ctx, address="127.0.0.2", name="h2", network="none")
    operations = get_db().execute("SELECT COUNT(*) FROM operations").fetchone()[0]
    with pytest.raises(core.InvalidInput, match="already on host h1"):
        core.migrateVm("vm1", "h1")
    with pytest.raises(core.InvalidInput, match="already on host h1"):
        core.migrateVm("vm1", host["id"])
    with pytest.raises(core.NotFound, match="host h9 not found"):
        core.migrateVm("vm1", "h9")
    ctx.config["MEM_OVERCOMMIT"] = 1e-6
    with pytest.raises(core.InvalidInput, match="host h2 cannot take a VM of 64 MiB"):
        core.migrateVm("vm1", "h2")
    vms_repo.set_state(get_db(), "vm1", "error")
    with pytest.raises(core.InvalidInput, match="vm1 is error: cannot migrate it"):
        core.migrateVm("vm1")
    assert get_db().execute("SELECT COUNT(*) FROM operations").fetchone()[0] == operations
    assert core.listVms()[0]["host_name"] == "h1"


def test_a_busy_vm_is_not_migrated(ctx, host, image):
    gen_vm(ctx, image, "vm1")
    gen_host(ctx, address="127.0.0.2", name="h2", network="none")
    vms_repo.claim_task(get_db(), "vm1", "starting", None)
    with pytest.raises(core.Busy, match="vm1 is starting"):
        core.migrateVm("vm1")


def test_the_monitor_calls_no_migrating_domain_drift(ctx, host, image):
    from app.services import monitor

    gen_vm(ctx, image, "vm1")
    vms_repo.claim_task(get_db(), "vm1", "migrating", None)
    # a host the VM is arriving on lists its domain, and a stray one
    monitor._apply_domains(get_db(), host["id"], [], {"vm1": None, "stray": None}, "")
    names = [
        r["name"]
        for r in get_db().execute("SELECT name FROM drift WHERE kind = ?", ("unknown_domain",))
    ]
    assert names == ["stray"]


def test_the_page_offers_the_other_hosts(app, admin_client, host, image):
    gen_vm(app, image, "vm1")
    gen_host(app, address="127.0.0.2", name="h2", network="none")
    form = page(admin_client.get("/vms/vm1")).by_id("migrate-form")
    options = [o.text for o in form.field("host").find_all("option")]
    assert options[0] == "Automatic (placement)"
    assert [o.split(" (")[0] for o in options[1:]] == ["h2"]  # never its own host
    response = admin_client.post(
        "/vms/vm1/migrate",
        data={"csrf_token": csrf_token(admin_client, "/vms/vm1"), "host": "h1"},
    )
    assert response.status_code == 302 and response.headers["Location"] == "/vms/vm1"
    assert "already on host h1" in page(admin_client.get("/vms/vm1")).text


def test_a_drain_with_nowhere_to_go_lists_what_stayed(ctx, host, image):
    gen_vm(ctx, image, "vm1")
    result = core.drainHost(host["id"])
    assert result == {"moved": [], "stayed": [{"id": "vm1", "reason": "there is no other host"}]}
    assert core.listHosts()[0]["state"] == "maintenance"  # placement skips it from now on
    assert core.listVms()[0]["host_name"] == "h1" and core.listVms()[0]["task"] is None


def test_a_host_being_drained_is_neither_updated_nor_removed(ctx, host):
    from app.repositories import hosts as hosts_repo

    hosts_repo.claim_task(get_db(), host["id"], "draining", None)
    with pytest.raises(core.Busy, match="h1 is draining"):
        core.updateHost(host["id"], {"state": "ready"})
    with pytest.raises(core.Busy, match="h1 is draining"):
        core.removeHost(host["id"])


def test_removal_with_drain_stops_when_a_vm_cannot_leave(ctx, host, image):
    gen_vm(ctx, image, "vm1")
    with pytest.raises(core.OperationFailed, match="1 VM\\(s\\) could not leave h1"):
        core.removeHost(host["id"], drain=True)
    assert [vm["id"] for vm in core.listVms()] == ["vm1"]  # nothing lost
    assert core.listHosts()[0]["name"] == "h1"


def test_the_host_page_offers_drain_and_remove_with_drain(app, admin_client, host, image):
    gen_vm(app, image, "vm1")
    doc = page(admin_client.get(f"/hosts/{host['id']}"))
    assert doc.by_id("drain-form")["action"] == f"/hosts/{host['id']}/drain"
    assert doc.by_id("host-remove-form").field("drain")
    response = admin_client.post(
        f"/hosts/{host['id']}/drain",
        data={"csrf_token": csrf_token(admin_client, f"/hosts/{host['id']}")},
    )
    assert response.status_code == 302
    with app.app_context():
        assert core.listHosts()[0]["state"] == "maintenance"


def test_a_drain_plans_destinations_so_parallel_moves_never_overbook(ctx, host, image):
    from types import SimpleNamespace

    from app.repositories import hosts as hosts_repo
    from app.services import migrate_work

    for n in range(3):
        gen_vm(ctx, image, f"vm{n}", mem=100)
    h2 = gen_host(ctx, address="127.0.0.2", name="h2", network="none")
    hosts_repo.update(get_db(), h2["id"], mem=250)  # room for two of them
    errors = []
    plan_ctx = SimpleNamespace(conn=get_db(), config=ctx.config, error=errors.append)
    vms = [dict(v) for v in vms_repo.on_host(get_db(), host["id"])]
    plan, stayed = migrate_work._plan(plan_ctx, vms, dict(host))
    assert [(vm["id"], dst["name"]) for vm, dst in plan] == [("vm0", "h2"), ("vm1", "h2")]
    assert [s["id"] for s in stayed] == ["vm2"]
    assert "h2: 50 MiB free of 250 MiB" in stayed[0]["reason"]


def test_a_drain_shows_in_each_vms_history_and_a_host_removal_too(app, admin_client, host, image):
    for vm_id in ("vm1", "vm2"):
        gen_vm(app, image, vm_id)
    with app.app_context():
        core.drainHost(host["id"])
        drain_id = get_db().execute("SELECT MAX(id) FROM operations").fetchone()[0]
    for vm_id in ("vm1", "vm2"):
        history = page(admin_client.get(f"/vms/{vm_id}")).by_id("vm-operations")
        assert history.link(f"/operations/{drain_id}").text == f"#{drain_id} host.drain"
    with app.app_context():
        core.removeHost(host["id"])
        removal_id = get_db().execute("SELECT MAX(id) FROM operations").fetchone()[0]
        touched = [op["id"] for op in operations.for_target("vm", "vm1")]
    assert touched[:2] == [removal_id, drain_id]


def test_after_a_drain_the_host_page_offers_back_to_ready(app, admin_client, host, image):
    doc = page(admin_client.get(f"/hosts/{host['id']}"))
    assert doc.find(id="back-to-ready") is None
    with app.app_context():
        core.drainHost(host["id"])
    banner = page(admin_client.get(f"/hosts/{host['id']}")).by_id("back-to-ready")
    assert "in maintenance" in banner.text
    token = csrf_token(admin_client, f"/hosts/{host['id']}")
    response = admin_client.post(f"/hosts/{host['id']}/ready", data={"csrf_token": token})
    assert response.status_code == 302
    with app.app_context():
        assert core.listHosts()[0]["state"] == "ready"
    assert page(admin_client.get(f"/hosts/{host['id']}")).find(id="back-to-ready") is None
