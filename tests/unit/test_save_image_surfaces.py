"""Saving a VM as an image through its other surfaces: POST /api/v1/vms/{id}/save-image, `nube
vm save-image`, and the VM page's "Save as image" card (shown while the VM is stopped, to
those who manage images). virt-sysprep is recorded, as in test_save_image.py."""

import re

import pytest

from app import core
from app.adapters.image_saver import ImageSaver
from tests.api_client import Api, assert_problem, finished, make_token
from tests.conftest import csrf_token
from tests.factories import gen_user, gen_vm
from tests.html import page
from tests.unit import test_client
from tests.unit.test_save_image import SysprepRecorder, leftovers

# test_client.py's fixtures: the client in-process, the served app, logged in with a token
nube = test_client.nube
served = test_client.served
token = test_client.token
logged_in = test_client.logged_in


@pytest.fixture
def stopped_vm(app, host, image):
    """VM vm1, stopped, on the raw base image; virt-sysprep recorded."""
    app.extensions["nube"].image_saver = ImageSaver(runner=SysprepRecorder())
    gen_vm(app, image, "vm1")
    return "vm1"


def images_dir(app):
    return app.extensions["nube"].storage.images_dir


def test_save_through_the_api(app, admin_api, stopped_vm):
    response = admin_api.post("/vms/vm1/save-image", {"name": "golden.qcow2"})
    op = finished(admin_api, response)
    assert (op["kind"], op["status"]) == ("image.save", "succeeded"), op
    shown = admin_api.get("/images/golden.qcow2").get_json()
    assert shown["format"] == "qcow2"
    # refusals are problem details and change nothing
    before = leftovers(app)
    assert_problem(admin_api.post("/vms/vm1/save-image", {"name": "golden.qcow2"}), 409, "exists")
    assert_problem(admin_api.post("/vms/vm1/save-image", {"name": "x.raw"}), 422, "qcow2")
    assert_problem(
        admin_api.post("/vms/vm1/save-image", {"name": "y.qcow2", "snapshot": "nope"}),
        404,
        "no snapshot nope",
    )
    assert_problem(admin_api.post("/vms/novm/save-image", {"name": "z.qcow2"}), 404)
    assert leftovers(app) == before
    document = admin_api.get("/openapi.json").get_json()
    assert "post" in document["paths"]["/api/v1/vms/{vm_id}/save-image"]


def test_a_member_may_not_save(app, host, image, stopped_vm):
    gen_user(app, "member1", role="member")
    with app.app_context():
        core.addMember("default", "member1")
    member = Api(app, make_token(app, "member1", "m-token"))
    assert_problem(member.post("/vms/vm1/save-image", {"name": "mine.qcow2"}), 403)
    assert not (images_dir(app) / "mine.qcow2").exists()


def test_save_through_the_client(nube, logged_in, app, stopped_vm):
    run = nube("vm", "save-image", "vm1", "golden.img", "--wait")
    assert run.code == 0 and "(image.save) succeeded" in run.out, run.err
    assert (images_dir(app) / "golden.img").is_file()
    taken = nube("vm", "save-image", "vm1", "golden.img")
    assert taken.code == 6 and "image golden.img already exists" in taken.err
    missing = nube("vm", "save-image", "vm1", "other.qcow2", "--snapshot", "nope")
    assert missing.code == 5 and "no snapshot nope" in missing.err


def test_the_card_saves_a_stopped_vm(app, admin_client, stopped_vm):
    doc = page(admin_client.get("/vms/vm1"))
    form = doc.by_id("save-image-form")
    assert form is not None
    response = admin_client.post(
        "/vms/vm1/save-image",
        data={"csrf_token": csrf_token(admin_client, "/vms/vm1"), "name": "golden.qcow2"},
    )
    assert response.status_code == 302
    assert re.search(r"/operations/\d+", response.headers["Location"])
    assert (images_dir(app) / "golden.qcow2").is_file()


def test_the_card_refuses_bad_names_and_hides_for_a_running_vm(app, admin_client, stopped_vm):
    response = admin_client.post(
        "/vms/vm1/save-image",
        data={"csrf_token": csrf_token(admin_client, "/vms/vm1"), "name": "bad/name"},
        follow_redirects=True,
    )
    assert "invalid image name" in response.get_data(as_text=True)
    assert leftovers(app) == ["base.raw"]
    with app.app_context():
        core.startVm("vm1")
    assert not page(admin_client.get("/vms/vm1")).find_all(id="save-image-card")
