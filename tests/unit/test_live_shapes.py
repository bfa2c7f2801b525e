"""The dashboard's polling JSON and the operation log JSON use the /api/v1 objects' shapes: a
field they carry has the API's name and the API's value; only `display` and `bars` (what the
page alone needs) are their own."""

import pytest

from app.db import get_db
from app.repositories import operations as ops_repo
from app.web.api_v1 import schemas
from tests.factories import gen_host, gen_operation, gen_vm

PAGE_ONLY = {"display", "bars"}


@pytest.fixture
def cluster(app, image):
    """One ready host h1 with a VM vm1, and a running operation with progress 2 of 3."""
    host = gen_host(app)
    gen_vm(app, image, "vm1", mem=64, vcpus=2, host="h1")
    with app.app_context():
        conn = get_db()
        op_id = gen_operation(conn, "host.prepare", f"host:{host['id']}", "h1", worker="w")
        ops_repo.set_progress(conn, op_id, 2, 3)
    return host["id"], op_id


def _same_as_the_api(record, api_object, schema):
    """Every field of a polled record but the page's own is the API's field, with its value."""
    fields = set(record) - PAGE_ONLY
    assert fields <= set(schema().fields), fields - set(schema().fields)
    assert {key: record[key] for key in fields} == {key: api_object[key] for key in fields}


def test_a_polled_vm_is_the_api_vm(admin_client, admin_api, cluster):
    record = admin_client.get("/live/vms?ids=vm1").get_json()["vms"]["vm1"]
    _same_as_the_api(record, admin_api.get("/vms/vm1").get_json(), schemas.Vm)
    assert set(record) & PAGE_ONLY == PAGE_ONLY


def test_a_polled_host_is_the_api_host(admin_client, admin_api, cluster):
    host_id, _op_id = cluster
    record = admin_client.get(f"/live/hosts?ids={host_id}").get_json()["hosts"][str(host_id)]
    _same_as_the_api(record, admin_api.get(f"/hosts/{host_id}").get_json(), schemas.Host)
    assert record["bars"]["mem_allocated"]["used_text"] == "64 MiB"


def test_a_polled_operation_is_the_api_operation(admin_client, admin_api, cluster):
    _host_id, op_id = cluster
    api_op = admin_api.get(f"/operations/{op_id}").get_json()
    assert api_op["progress"] == {"percent": 67, "text": "2 of 3 tasks"}
    polled = admin_client.get("/live/overview").get_json()["operations"]
    _same_as_the_api(next(op for op in polled if op["id"] == op_id), api_op, schemas.Operation)
    log = admin_client.get(f"/operations/{op_id}/log.json").get_json()
    _same_as_the_api(log, api_op, schemas.Operation)
    assert log["progress"] == api_op["progress"] and log["log"] == api_op["log"]


def test_the_api_lists_operations_with_their_progress(admin_api, cluster):
    _host_id, op_id = cluster
    items = admin_api.get("/operations").get_json()["items"]
    assert next(op for op in items if op["id"] == op_id)["progress"]["text"] == "2 of 3 tasks"
