"""The overview page: counts by state, totals, recent operations, controller failures."""

import pytest

from app import core
from app.services import overview
from tests.html import page


def _count(doc, card, state):
    """The count a card shows for a state (its data-count, which the badge's number repeats)."""
    item = doc.by_id(f"card-{card}").one("li", data_state=state)
    assert item.one(data_count_of=f"{card}:{state}").text == item["data-count"]
    return int(item["data-count"])


def warnings(doc):
    """The controller warnings (failed controller operations) on the overview."""
    return doc.find_all(role="alert", class_="controller-warning")


def test_empty_state_with_no_hosts(admin_client):
    response = admin_client.get("/")
    assert response.status_code == 200
    doc = page(response)
    empty = doc.by_id("empty-state")
    assert empty.text.startswith("No hosts yet")
    assert empty.link("/hosts/new")
    assert _count(doc, "hosts", "ready") == 0
    assert doc.has_element("p", text="No operations yet.")
    assert not doc.find_all(class_="controller-warning")


def test_counts_after_adding_a_host_and_a_vm(app, admin_client, host, image):
    with app.app_context():
        core.addVm({"id": "vm1", "image": image, "mem": 64, "host": "h1"})
        host = core.listHosts()[0]
    doc = page(admin_client.get("/"))
    assert not doc.has_element(id="empty-state")
    assert doc.by_id("hosts-total").one("a").text == "1"
    assert doc.by_id("vms-total").one("a").text == "1"
    assert _count(doc, "hosts", "ready") == 1
    assert _count(doc, "hosts", "error") == 0
    assert _count(doc, "vms", "stopped") == 1
    assert _count(doc, "vms", "running") == 0
    assert doc.by_id("cpus-total").text == str(host["cpus"])
    assert doc.by_id("mem-allocated").one(data_bar_label=True).text.startswith("64 MiB allocated")
    recent = doc.by_id("recent-operations")
    kinds = [row.cells()[1] for row in recent.rows(data_operation_id=True)]
    assert "vm.create" in kinds and "host.add" in kinds
    assert kinds.index("vm.create") < kinds.index("host.add")  # newest first
    assert recent.links("/vms/vm1")
    assert recent.links("/hosts/1")


def test_summary_totals(app, host, image):
    with app.app_context():
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
    [warning] = warnings(page(admin_client.get("/")))
    assert "alert-danger" in warning.classes
    assert "controller.init failed" in warning.text
    assert "boom" in warning.text
    op_id = warning["data-operation-id"]
    assert warning.link(f"/operations/{op_id}").text.startswith(f"See operation {op_id}")
    assert admin_client.get(f"/operations/{op_id}").status_code == 200


def test_warning_gone_after_a_successful_init(app, admin_client, provisioner):
    provisioner.fail["iaas_init.yaml"] = "boom"
    with app.app_context(), pytest.raises(core.OperationFailed):
        core.init()
    del provisioner.fail["iaas_init.yaml"]
    with app.app_context():
        core.init()
    assert warnings(page(admin_client.get("/"))) == []


def test_operator_sees_the_overview(operator_client):
    response = operator_client.get("/")
    assert response.status_code == 200
    assert page(response).one("h1").text == "Overview"
