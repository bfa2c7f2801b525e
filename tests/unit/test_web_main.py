"""The overview page: counts by state, totals, recent operations, controller failures."""

import re

import pytest

from app import core
from app.services import overview


def _count(page, card, state):
    """The count a card shows for a state."""
    block = re.search(rf'id="card-{card}"(.*?)</ul>', page, re.S).group(1)
    return int(re.search(rf'data-state="{state}" data-count="(\d+)"', block).group(1))


def test_empty_state_with_no_hosts(admin_client):
    response = admin_client.get("/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    empty = re.search(r'<div[^>]*id="empty-state"[^>]*>(.*?)</div>', page, re.S).group(1)
    assert "No hosts yet" in empty
    assert 'href="/hosts/new"' in empty
    assert _count(page, "hosts", "ready") == 0
    assert "No operations yet." in page
    assert "controller-warning" not in page


def test_counts_after_adding_a_host_and_a_vm(app, admin_client, image):
    with app.app_context():
        core.addHost({"address": "127.0.0.1", "user": "root", "prepare": False, "name": "h1"})
        core.addVm({"id": "vm1", "image": image, "mem": 64, "host": "h1"})
        host = core.listHosts()[0]
    page = admin_client.get("/").get_data(as_text=True)
    assert 'id="empty-state"' not in page
    assert re.search(r'id="hosts-total"><a[^>]*>1</a>', page)
    assert re.search(r'id="vms-total"><a[^>]*>1</a>', page)
    assert _count(page, "hosts", "ready") == 1
    assert _count(page, "hosts", "error") == 0
    assert _count(page, "vms", "stopped") == 1
    assert _count(page, "vms", "running") == 0
    assert f'id="cpus-total">{host["cpus"]}<' in page
    assert "64 MiB allocated" in page
    recent = re.search(r'id="recent-operations"(.*?)</table>', page, re.S).group(1)
    assert "vm.create" in recent and "host.add" in recent
    assert recent.index("vm.create") < recent.index("host.add")  # newest first
    assert 'href="/vms/vm1"' in recent
    assert 'href="/hosts/1"' in recent


def test_summary_totals(app, image):
    with app.app_context():
        core.addHost({"address": "127.0.0.1", "user": "root", "prepare": False, "name": "h1"})
        core.addVm({"id": "vm1", "image": image, "mem": 64, "vcpus": 2, "host": "h1"})
        core.addVm({"id": "vm2", "image": image, "mem": 128, "host": "h1"})
        host = core.listHosts()[0]
        summary = overview.summary()
    assert summary["hosts_by_state"]["ready"] == 1
    assert summary["vms_by_state"]["stopped"] == 2
    totals = summary["totals"]
    assert (totals["hosts"], totals["vms"]) == (1, 2)
    assert totals["mem"] == host["mem"]
    assert totals["mem_allocated"] == 192
    assert totals["vcpus_allocated"] == 3
    assert len(summary["recent_operations"]) == 3
    assert summary["failed_controller_operations"] == []


def test_failed_controller_init_warns(app, admin_client, provisioner):
    provisioner.fail["iaas_init.yaml"] = "boom"
    with app.app_context(), pytest.raises(core.OperationFailed):
        core.init()
    page = admin_client.get("/").get_data(as_text=True)
    warning = re.search(
        r'<div class="alert alert-danger controller-warning"[^>]*>(.*?)</div>', page, re.S
    )
    assert warning
    text = warning.group(1)
    assert "controller.init failed" in text
    assert "boom" in text
    op_id = re.search(r'href="/operations/(\d+)"', text).group(1)
    assert admin_client.get(f"/operations/{op_id}").status_code == 200


def test_warning_gone_after_a_successful_init(app, admin_client, provisioner):
    provisioner.fail["iaas_init.yaml"] = "boom"
    with app.app_context(), pytest.raises(core.OperationFailed):
        core.init()
    del provisioner.fail["iaas_init.yaml"]
    with app.app_context():
        core.init()
    page = admin_client.get("/").get_data(as_text=True)
    assert "controller-warning" not in page


def test_operator_sees_the_overview(operator_client):
    response = operator_client.get("/")
    assert response.status_code == 200
    assert "Overview" in response.get_data(as_text=True)
