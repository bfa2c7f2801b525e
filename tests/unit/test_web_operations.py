"""Operation pages: the list, one operation with its log, log.json, cancel."""

import html
import json
import re

import pytest

from app import core
from app.db import get_db
from app.repositories import operations as ops_repo
from app.services import operations
from tests.conftest import csrf_token

TERMINAL = {"succeeded", "failed", "canceled", "interrupted"}


@pytest.fixture
def host_op(app):
    """A finished host.add operation (the recording provisioner succeeds); returns its id."""
    with app.app_context():
        core.addHost({"address": "127.0.0.1", "user": "root", "prepare": False, "name": "h1"})
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
    html = response.get_data(as_text=True)
    row = re.search(rf'<tr data-operation-id="{host_op}">(.*?)</tr>', html, re.S).group(1)
    assert f'href="/operations/{host_op}"' in row
    assert "host.add" in row
    assert 'href="/hosts/1"' in row  # the target links to its host page
    assert "status-succeeded" in row
    assert "api" in row  # requested by the core API


def test_index_links_vm_targets(admin_client, pending_op):
    html = admin_client.get("/operations/").get_data(as_text=True)
    assert 'href="/vms/vm9"' in html
    assert "status-pending" in html


def test_index_empty(admin_client):
    html = admin_client.get("/operations/").get_data(as_text=True)
    assert 'id="empty-state"' in html


def test_index_filter(admin_client, host_op, pending_op):
    html = admin_client.get("/operations/", query_string={"q": "status = pending"}).get_data(
        as_text=True
    )
    assert f'data-operation-id="{pending_op}"' in html
    assert f'data-operation-id="{host_op}"' not in html
    html = admin_client.get("/operations/", query_string={"q": "target_name LIKE 'h%'"}).get_data(
        as_text=True
    )
    assert f'data-operation-id="{host_op}"' in html
    assert f'data-operation-id="{pending_op}"' not in html


def test_index_filter_error_inline(admin_client, host_op):
    response = admin_client.get("/operations/", query_string={"q": "status = = failed"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "is-invalid" in html
    match = re.search(r'<div class="invalid-feedback" id="filter-error">(.*?)</div>', html, re.S)
    assert match and "position" in match.group(1)
    assert "No operation matches this filter." in html


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
    html = admin_client.get("/operations/").get_data(as_text=True)
    assert re.findall(r'data-operation-id="(\d+)"', html) == ["5", "4"]
    assert "Page 1 of 3 (5)" in html
    html = admin_client.get("/operations/", query_string={"page": 3}).get_data(as_text=True)
    assert re.findall(r'data-operation-id="(\d+)"', html) == ["1"]


def test_show_has_the_log_and_input(app, admin_client, host_op):
    response = admin_client.get(f"/operations/{host_op}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    log = html.unescape(
        re.search(r'<pre class="log[^"]*" id="op-log"[^>]*>(.*?)</pre>', page, re.S).group(1)
    )
    with app.app_context():
        messages = [line["message"] for line in operations.log(host_op)]
    assert messages
    positions = [log.index(message) for message in messages]
    assert positions == sorted(positions)
    assert "status-succeeded" in page
    assert 'id="cancel-form"' not in page  # finished: nothing to cancel
    assert "operation.js" not in page  # finished: nothing to follow
    shown = html.unescape(re.search(r'<pre[^>]*id="op-input">(.*?)</pre>', page, re.S).group(1))
    assert json.loads(shown)["name"] == "h1"
    assert "password" not in shown


def test_show_log_lines_in_order(app, admin_client, pending_op):
    html = admin_client.get(f"/operations/{pending_op}").get_data(as_text=True)
    log = re.search(r'id="op-log"[^>]*>(.*?)</pre>', html, re.S).group(1)
    assert log.index("queued") < log.index("waiting for a worker")
    assert 'class="line level-warning"' in log


def test_show_running_follows_the_log(admin_client, pending_op):
    html = admin_client.get(f"/operations/{pending_op}").get_data(as_text=True)
    assert 'id="cancel-form"' in html
    assert '<script src="/static/operation.js"></script>' in html
    assert 'data-done="0"' in html
    assert f'data-log-url="/operations/{pending_op}/log.json"' in html
    last = int(re.search(r'data-after="(\d+)"', html).group(1))
    assert last > 0


def test_show_unknown_is_404(admin_client):
    response = admin_client.get("/operations/9999")
    assert response.status_code == 404
    assert "operation 9999 not found" in response.get_data(as_text=True)


def test_log_json_lines_after_an_id(app, admin_client, pending_op):
    data = admin_client.get(f"/operations/{pending_op}/log.json").get_json()
    assert data["status"] == "pending"
    assert data["done"] is False
    assert [line["message"] for line in data["lines"]] == ["queued", "waiting for a worker"]
    assert set(data["lines"][0]) >= {"id", "ts", "level", "message"}
    first = data["lines"][0]["id"]
    data = admin_client.get(
        f"/operations/{pending_op}/log.json", query_string={"after": first}
    ).get_json()
    assert [line["message"] for line in data["lines"]] == ["waiting for a worker"]
    last = data["lines"][-1]["id"]
    data = admin_client.get(
        f"/operations/{pending_op}/log.json", query_string={"after": last}
    ).get_json()
    assert data["lines"] == []
    with app.app_context():
        conn = get_db()
        ops_repo.append_log(conn, pending_op, "started")
        ops_repo.set_progress(conn, pending_op, 1, 3)
    data = admin_client.get(
        f"/operations/{pending_op}/log.json", query_string={"after": last}
    ).get_json()
    assert [line["message"] for line in data["lines"]] == ["started"]
    assert (data["progress_done"], data["progress_total"]) == (1, 3)


def test_log_json_done_for_a_finished_one(admin_client, host_op):
    response = admin_client.get(f"/operations/{host_op}/log.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    data = response.get_json()
    assert data["status"] == "succeeded"
    assert data["done"] is True
    assert data["lines"]


def test_log_json_bad_after_reads_from_the_start(admin_client, pending_op):
    data = admin_client.get(
        f"/operations/{pending_op}/log.json", query_string={"after": "x"}
    ).get_json()
    assert len(data["lines"]) == 2


def test_log_json_needs_login(app, pending_op):
    response = app.test_client().get(f"/operations/{pending_op}/log.json")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_cancel_a_pending_one(app, admin_client, pending_op):
    response = _post(admin_client, f"/operations/{pending_op}/cancel")
    html = response.get_data(as_text=True)
    assert f"Cancel requested for operation {pending_op}." in html
    assert 'id="cancel-form"' not in html  # it never started: it ends canceled at once
    with app.app_context():
        op = operations.get(pending_op)
        assert op["cancel_requested"] == 1 and op["status"] == "canceled" and op["finished_at"]
        messages = [line["message"] for line in operations.log(pending_op)]
        assert "cancel requested by admin" in messages
        assert any(m.startswith("canceled before it started") for m in messages)


def test_cancel_a_finished_one_refused(app, admin_client, host_op):
    response = _post(admin_client, f"/operations/{host_op}/cancel")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert f"operation {host_op} is succeeded: nothing to cancel" in html
    assert "alert-danger" in html
    with app.app_context():
        assert operations.get(host_op)["cancel_requested"] == 0


def test_cancel_is_post_only(admin_client, pending_op):
    assert admin_client.get(f"/operations/{pending_op}/cancel").status_code == 405


def test_operator_can_see_and_cancel(app, operator_client, pending_op):
    assert operator_client.get("/operations/").status_code == 200
    response = _post(operator_client, f"/operations/{pending_op}/cancel")
    assert "Cancel requested" in response.get_data(as_text=True)
