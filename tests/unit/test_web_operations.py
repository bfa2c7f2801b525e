"""Operation pages: the list, one operation with its log, log.json, cancel."""

import json

import pytest

from app.db import get_db
from app.repositories import operations as ops_repo
from app.services import operations
from tests.conftest import csrf_token
from tests.html import page


def listed(doc):
    """The operation ids of a list page's rows, in order."""
    return [row["data-operation-id"] for row in doc.rows(data_operation_id=True)]


def badge(element, status):
    """Whether an element shows a status badge reading that status."""
    return element.has_element("span", class_=f"badge status-{status}", text=status)


TERMINAL = {"succeeded", "failed", "canceled", "interrupted"}


@pytest.fixture
def host_op(app, host):
    """A finished host.add operation (the recording provisioner succeeds); returns its id."""
    with app.app_context():
        return operations.page("kind = 'host.add'", 1, 0)[0][0]["id"]


@pytest.fixture
def pending_op(app):
    """A pending operation nobody runs, with two log lines; returns its id."""
    with app.app_context():
        conn = get_db()
        op_id = ops_repo.insert(
            conn,
            kind="vm.start",
            target_type="vm",
            target_id="vm9",
            target_name="vm9",
            requested_by="admin",
            input_data={"id": "vm9"},
        )
        ops_repo.append_log(conn, op_id, "queued")
        ops_repo.append_log(conn, op_id, "waiting for a worker", "warning")
        return op_id


def _post(client, url):
    """POST with a valid CSRF token, following the redirect."""
    token = csrf_token(client, "/account/password")
    return client.post(url, data={"csrf_token": token}, follow_redirects=True)


def test_index_lists_operations(admin_client, host_op):
    response = admin_client.get("/operations/")
    assert response.status_code == 200
    row = page(response).one("tr", data_operation_id=str(host_op))
    assert row.links(f"/operations/{host_op}")
    assert "host.add" in row.cells()
    assert row.link("/hosts/1").text == "h1"  # the target links to its host page
    assert badge(row, "succeeded")
    assert "api" in row.cells()  # requested by the core API


def test_index_links_vm_targets(admin_client, pending_op):
    row = page(admin_client.get("/operations/")).one("tr", data_operation_id=str(pending_op))
    assert row.link("/vms/vm9").text == "vm9"
    assert badge(row, "pending")


def test_index_empty(admin_client):
    doc = page(admin_client.get("/operations/"))
    assert doc.by_id("empty-state").text == "No operations yet."


def test_index_filter(admin_client, host_op, pending_op):
    doc = page(admin_client.get("/operations/", query_string={"q": "status = pending"}))
    assert listed(doc) == [str(pending_op)]
    doc = page(admin_client.get("/operations/", query_string={"q": "target_name LIKE 'h%'"}))
    assert listed(doc) == [str(host_op)]


def test_index_filter_error_inline(admin_client, host_op):
    response = admin_client.get("/operations/", query_string={"q": "status = = failed"})
    assert response.status_code == 200
    doc = page(response)
    search = doc.one("form", role="search")
    assert "is-invalid" in search.field("q").classes
    error = search.by_id("filter-error")
    assert "invalid-feedback" in error.classes and "position" in error.text
    assert error.text.startswith("Invalid filter: ")
    assert not doc.has_element("p", text="No operation matches this filter.")


def test_index_pages(app, admin_client):
    app.config["PAGE_SIZE"] = 2
    with app.app_context():
        conn = get_db()
        for n in range(5):
            ops_repo.insert(
                conn,
                kind="vm.stop",
                target_type="vm",
                target_id=f"v{n}",
                target_name=f"v{n}",
                requested_by="admin",
                input_data={},
            )
    doc = page(admin_client.get("/operations/"))
    assert listed(doc) == ["5", "4"]
    assert doc.pager().one("span", class_="page-link").text == "Page 1 of 3 (5)"
    assert listed(page(admin_client.get("/operations/", query_string={"page": 3}))) == ["1"]


def test_show_has_the_log_and_input(app, admin_client, host_op):
    response = admin_client.get(f"/operations/{host_op}")
    assert response.status_code == 200
    doc = page(response)
    log = doc.one("pre", id="op-log", class_="log").raw_text
    with app.app_context():
        messages = [line["message"] for line in operations.log(host_op)]
    assert messages
    positions = [log.index(message) for message in messages]
    assert positions == sorted(positions)
    assert badge(doc.by_id("op-status"), "succeeded")
    assert not doc.has_element(id="cancel-form")  # finished: nothing to cancel
    assert not [src for src in doc.scripts() if "operation.js" in src]  # nothing to follow
    shown = doc.one("pre", id="op-input").raw_text
    assert json.loads(shown)["name"] == "h1"
    assert "password" not in shown


def test_show_log_lines_in_order(app, admin_client, pending_op):
    log = page(admin_client.get(f"/operations/{pending_op}")).by_id("op-log")
    lines = [line.text for line in log.find_all("span", class_="line")]
    assert [line.split(maxsplit=2)[2] for line in lines] == ["queued", "waiting for a worker"]
    [warning] = log.find_all("span", class_="line level-warning")
    assert warning.text.endswith("waiting for a worker")


def test_show_running_follows_the_log(admin_client, pending_op):
    doc = page(admin_client.get(f"/operations/{pending_op}"))
    assert doc.by_id("cancel-form")["action"] == f"/operations/{pending_op}/cancel"
    assert "/static/operation.js" in doc.scripts()
    operation = doc.by_id("operation")
    assert operation["data-done"] == "0"
    assert operation["data-log-url"] == f"/operations/{pending_op}/log.json"
    assert int(operation["data-after"]) > 0


def test_show_unknown_is_404(admin_client):
    response = admin_client.get("/operations/9999")
    assert response.status_code == 404
    assert "operation 9999 not found" in page(response).one("p", class_="lead").text


def test_log_json_lines_after_an_id(app, admin_client, pending_op):
    data = admin_client.get(f"/operations/{pending_op}/log.json").get_json()
    assert data["status"] == "pending"
    assert data["done"] is False and data["more"] is False  # the server says if more wait
    # times as the page shows them, formatted by the server (the script formats nothing)
    shown = data["display"]
    assert (shown["started_at"], shown["finished_at"], shown["duration"]) == ("-",) * 3
    assert [line["message"] for line in data["log"]] == ["queued", "waiting for a worker"]
    assert set(data["log"][0]) >= {"id", "ts", "level", "message"}
    first = data["log"][0]["id"]
    data = admin_client.get(
        f"/operations/{pending_op}/log.json", query_string={"after": first}
    ).get_json()
    assert [line["message"] for line in data["log"]] == ["waiting for a worker"]
    last = data["log"][-1]["id"]
    data = admin_client.get(
        f"/operations/{pending_op}/log.json", query_string={"after": last}
    ).get_json()
    assert data["log"] == []
    with app.app_context():
        conn = get_db()
        ops_repo.append_log(conn, pending_op, "started")
        ops_repo.set_progress(conn, pending_op, 1, 3)
    data = admin_client.get(
        f"/operations/{pending_op}/log.json", query_string={"after": last}
    ).get_json()
    assert [line["message"] for line in data["log"]] == ["started"]
    assert (data["progress_done"], data["progress_total"]) == (1, 3)
    assert data["progress"] == {"percent": 33, "text": "1 of 3 tasks"}  # as the page shows it


def test_log_json_done_for_a_finished_one(admin_client, host_op):
    response = admin_client.get(f"/operations/{host_op}/log.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    data = response.get_json()
    assert data["status"] == "succeeded"
    assert data["done"] is True
    assert data["log"]


def test_log_json_bad_after_reads_from_the_start(admin_client, pending_op):
    data = admin_client.get(
        f"/operations/{pending_op}/log.json", query_string={"after": "x"}
    ).get_json()
    assert len(data["log"]) == 2


def test_log_json_needs_login(app, pending_op):
    response = app.test_client().get(f"/operations/{pending_op}/log.json")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_cancel_a_pending_one(app, admin_client, pending_op):
    response = _post(admin_client, f"/operations/{pending_op}/cancel")
    doc = page(response)
    assert doc.alert(f"Cancel requested for operation {pending_op}.", "info")
    assert not doc.has_element(id="cancel-form")  # it never started: it ends canceled at once
    with app.app_context():
        op = operations.get(pending_op)
        assert op["cancel_requested"] == 1 and op["status"] == "canceled" and op["finished_at"]
        messages = [line["message"] for line in operations.log(pending_op)]
        assert "cancel requested by admin" in messages
        assert any(m.startswith("canceled before it started") for m in messages)


def test_cancel_a_finished_one_refused(app, admin_client, host_op):
    response = _post(admin_client, f"/operations/{host_op}/cancel")
    assert response.status_code == 200
    assert page(response).alert(f"operation {host_op} is succeeded: nothing to cancel", "danger")
    with app.app_context():
        assert operations.get(host_op)["cancel_requested"] == 0


def test_cancel_is_post_only(admin_client, pending_op):
    assert admin_client.get(f"/operations/{pending_op}/cancel").status_code == 405


def test_operator_can_see_and_cancel(app, operator_client, pending_op):
    assert operator_client.get("/operations/").status_code == 200
    response = _post(operator_client, f"/operations/{pending_op}/cancel")
    assert page(response).alert("Cancel requested", "info")
