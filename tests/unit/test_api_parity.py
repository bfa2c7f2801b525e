"""What only the dashboard could do, now through /api/v1 and the `nube` client too: retry and
re-check a failed operation, accept a reinstalled host's new SSH key, upload an image. Roles as
the dashboard's, problem details on errors, each in the OpenAPI document."""

import json

import pytest

from app import core
from app.db import get_db
from tests.api_client import API, Api, assert_problem, finished, make_token
from tests.factories import gen_host
from tests.unit.test_client import logged_in, nube, served, token  # noqa: F401 (fixtures)
from tests.unit.test_web_images import qcow2_bytes, small_app  # noqa: F401 (a fixture)

FINGERPRINT = "SHA256:" + "A" * 43


def newest_operation(app, kind):
    """The newest operation row of a kind."""
    with app.app_context():
        row = (
            get_db()
            .execute("SELECT * FROM operations WHERE kind = ? ORDER BY id DESC", (kind,))
            .fetchone()
        )
        return dict(row) if row else None


@pytest.fixture
def failed_start(app, host, image, monkeypatch):
    """A vm.start of VM r1 that failed (its host did not answer); the host is back since."""
    hypervisor = app.extensions["nube"].hypervisor
    real_start = hypervisor.start
    with app.app_context():
        core.addVm({"id": "r1", "image": image, "mem": 64})

        def unreachable(_host, _name):
            raise core.HostUnreachable("host h1 did not answer")

        monkeypatch.setattr(hypervisor, "start", unreachable)
        with pytest.raises(core.OperationFailed):
            core.startVm("r1")
    monkeypatch.setattr(hypervisor, "start", real_start)
    return newest_operation(app, "vm.start")


def vm_state(app, vm_id):
    """A VM's state as core.listVms shows it."""
    with app.app_context():
        return core.listVms(f"id = {vm_id}")[0]["state"]


# retry and re-check -------------------------------------------------------------------


def test_retry_a_failed_operation_through_the_api(app, operator_api, failed_start):
    response = operator_api.post(f"/operations/{failed_start['id']}/retry")
    op = finished(operator_api, response)
    assert op["kind"] == "vm.start" and op["status"] == "succeeded"
    assert op["id"] != failed_start["id"] and op["requested_by"] == "oper"
    assert vm_state(app, "r1") == "running"
    # the new operation succeeded: nothing to retry there
    assert_problem(operator_api.post(f"/operations/{op['id']}/retry"), 422, "cannot be retried")


def test_recheck_records_the_real_state_through_the_api(app, admin_api, failed_start):
    response = admin_api.post(f"/operations/{failed_start['id']}/recheck")
    op = finished(admin_api, response)
    assert op["kind"] == "vm.recheck" and op["status"] == "succeeded"
    assert vm_state(app, "r1") == "stopped"


def test_retry_and_recheck_of_no_operation_are_404(admin_api):
    for action in ("retry", "recheck"):
        assert_problem(admin_api.post(f"/operations/999/{action}"), 404)


def test_the_client_retries_and_rechecks(app, nube, logged_in, failed_start):  # noqa: F811
    run = nube("op", "retry", failed_start["id"], "--wait")
    assert run.code == 0, run.err
    assert "(vm.start) succeeded" in run.out
    assert vm_state(app, "r1") == "running"
    run = nube("-o", "json", "op", "recheck", failed_start["id"])
    assert run.code == 0, run.err
    assert run.json()["operation"]["kind"] == "vm.recheck"
    run = nube("op", "retry", newest_operation(app, "vm.start")["id"])
    assert run.code == 3 and "cannot be retried" in run.err


# accept a host's new key --------------------------------------------------------------


@pytest.fixture
def rekeyed_host(app, provisioner):
    """A prepared host h1 whose machine now offers a new key (the fake's key is its
    fingerprint)."""
    provisioner.offered_keys["127.0.0.1"] = "ssh-ed25519 AAAAold"
    host = gen_host(app, password="sudo-pw", prepare=True)
    provisioner.offered_keys["127.0.0.1"] = FINGERPRINT
    return host


def accept_key_audits(app):
    """How many host.accept_key audit rows there are."""
    with app.app_context():
        query = "SELECT COUNT(*) FROM audit WHERE action = 'host.accept_key'"
        return get_db().execute(query).fetchone()[0]


def test_accept_a_host_key_through_the_api_is_for_admins(
    app, provisioner, admin_api, operator_api, rekeyed_host
):
    path = f"/hosts/{rekeyed_host['name']}/accept-key"
    assert_problem(operator_api.post(path, {"fingerprint": FINGERPRINT}), 403)
    assert_problem(admin_api.post(path, {"fingerprint": "SHA256:" + "B" * 43}), 409, "has changed")
    assert_problem(admin_api.post(path, {"fingerprint": "md5:aa"}), 422, "must look like SHA256:")
    assert_problem(admin_api.post(path, {}), 422)
    assert accept_key_audits(app) == 0 and provisioner.known_keys["127.0.0.1"] != FINGERPRINT
    response = admin_api.post(path, {"fingerprint": FINGERPRINT})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["name"] == "h1"
    assert provisioner.known_keys["127.0.0.1"] == FINGERPRINT
    assert accept_key_audits(app) == 1
    assert_problem(admin_api.post("/hosts/nope/accept-key", {"fingerprint": FINGERPRINT}), 404)


def test_the_client_accepts_a_host_key(app, provisioner, nube, logged_in, rekeyed_host):  # noqa: F811
    run = nube("host", "accept-key", "h1", "SHA256:" + "B" * 43)
    assert run.code == 6 and "has changed" in run.err
    run = nube("-o", "json", "host", "accept-key", "h1", FINGERPRINT)
    assert run.code == 0, run.err
    assert run.json()["name"] == "h1"
    assert provisioner.known_keys["127.0.0.1"] == FINGERPRINT


def test_an_operator_client_cannot_accept_a_host_key(app, nube, served, rekeyed_host):  # noqa: F811
    oper = make_token(app, "oper", "oper-cli")
    assert nube("login", served, "--token-stdin", stdin=oper + "\n").code == 0
    run = nube("host", "accept-key", "h1", FINGERPRINT)
    assert run.code == 4 and "only admins" in run.err
    assert accept_key_audits(app) == 0


# upload an image ----------------------------------------------------------------------


def images_dir(app):
    """The repository's images folder."""
    return app.extensions["nube"].storage.images_dir


def put_image(api, name, body, **query):
    """PUT an image file as the request body."""
    headers = {**api.headers, "Content-Type": "application/octet-stream"}
    return api.client.put(f"{API}/images/{name}", data=body, headers=headers, query_string=query)


def test_upload_an_image_through_the_api(app, operator_api, tmp_path):
    response = put_image(operator_api, "disk.qcow2", qcow2_bytes(tmp_path), description="tiny")
    assert response.status_code == 201, response.get_data(as_text=True)
    image = response.get_json()
    assert (image["name"], image["format"]) == ("disk.qcow2", "qcow2")
    assert (image["description"], image["uploaded_by"]) == ("tiny", "oper")
    assert sorted(p.name for p in images_dir(app).iterdir()) == ["disk.qcow2"]
    again = put_image(operator_api, "disk.qcow2", qcow2_bytes(tmp_path))
    assert_problem(again, 422, "already exists")


def test_an_api_upload_is_checked_as_the_page_checks_it(app, admin_api):
    assert_problem(put_image(admin_api, "bad.qcow2", b"not an image"), 422)
    assert_problem(put_image(admin_api, "../evil", b"x"), 404)  # no such route
    assert_problem(put_image(admin_api, "build", b"x"), 405)  # the build action's address
    app.config["MAX_UPLOAD_MB"] = 1  # the request limit stays high: the service refuses
    big = put_image(admin_api, "big.raw", b"\0" * (3 * 1024 * 1024 // 2))
    assert_problem(big, 422, "image is larger than 1 MB")
    assert list(images_dir(app).iterdir()) == []


def test_an_api_upload_may_be_larger_than_a_form(app, admin_api):
    body = bytearray(3 * 1024 * 1024 // 2)  # more than any other request may send
    body[510:512] = b"\x55\xaa"  # a boot sector: a raw disk a VM could boot
    body = bytes(body)
    response = put_image(admin_api, "big.raw", body)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert (images_dir(app) / "big.raw").stat().st_size == len(body)


def test_other_api_routes_keep_the_small_body_limit(app, admin_api):
    response = admin_api.post("/vms", {"id": "vm1", "user_data": "x" * (2 * 1024 * 1024)})
    assert_problem(response, 413, "larger than this controller accepts")


def test_an_api_upload_over_the_request_limit_is_413(small_app):  # noqa: F811
    api = Api(small_app, make_token(small_app, "admin"))
    response = put_image(api, "huge.raw", b"\0" * (3 * 1024 * 1024))
    assert_problem(response, 413, "larger than this controller accepts")
    assert list(images_dir(small_app).iterdir()) == []


def test_an_upload_without_a_token_writes_nothing(app):
    response = Api(app, "nube_" + "x" * 43).client.put(
        f"{API}/images/x.raw", data=b"\0" * 1024, headers={"Authorization": "Bearer nope"}
    )
    assert_problem(response, 401)
    assert list(images_dir(app).iterdir()) == []


def test_the_client_uploads_an_image(app, nube, logged_in, tmp_path):  # noqa: F811
    path = tmp_path / "disk.qcow2"
    path.write_bytes(qcow2_bytes(tmp_path))
    run = nube("-o", "json", "image", "upload", "base.qcow2", path, "--description", "a disk")
    assert run.code == 0, run.err
    assert run.json()["name"] == "base.qcow2" and run.json()["description"] == "a disk"
    assert (images_dir(app) / "base.qcow2").read_bytes() == path.read_bytes()
    run = nube("image", "upload", "base.qcow2", path)
    assert run.code == 3 and "already exists" in run.err
    run = nube("image", "upload", "other.qcow2", tmp_path / "missing")
    assert run.code == 2 and "cannot read" in run.err
    (tmp_path / "junk").write_bytes(b"junk")
    run = nube("image", "upload", "junk.qcow2", tmp_path / "junk")
    assert run.code == 3, run.err
    assert sorted(p.name for p in images_dir(app).iterdir()) == ["base.qcow2"]


# the OpenAPI document -----------------------------------------------------------------


def test_the_new_actions_are_documented(admin_api):
    spec = admin_api.get("/openapi.json").get_json()
    paths = spec["paths"]
    for action in ("retry", "recheck"):
        answers = paths[f"/api/v1/operations/{{op_id}}/{action}"]["post"]["responses"]
        assert "202" in answers
    accept = paths["/api/v1/hosts/{host_ref}/accept-key"]["post"]
    assert "200" in accept["responses"] and accept["requestBody"]
    upload = paths["/api/v1/images/{name}"]["put"]
    assert "application/octet-stream" in upload["requestBody"]["content"]
    assert "201" in upload["responses"]
    assert json.dumps(spec)  # the document stays serialisable
