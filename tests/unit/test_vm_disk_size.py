"""A new VM's disk size: the image's virtual size by default, larger when asked (the disk is
grown as it is made), never smaller (one message from core, the API and the create form); and
the create form shows the chosen image's OS, format and virtual size and proposes its size."""

import pytest

from app import core
from app.db import get_db
from app.errors import InvalidInput
from app.repositories import images as images_repo
from tests.factories import gen_image
from tests.html import page
from tests.unit.test_one_validation_path import (
    api_call,
    api_messages,
    form_post,
    page_messages,
    said_by,
    service_message,
)

GIB = 1 << 30


@pytest.fixture
def big_image(app):
    """A sparse 3 GiB raw image recorded as debian-12."""
    name = gen_image(app, "big.raw", size="3G")
    with app.app_context():
        images_repo.record(get_db(), name, uploaded_by="admin", source="upload", os="debian-12")
    return name


def disk_bytes(app, vm_id):
    """The virtual size of a VM's disk, read from its header."""
    return app.extensions["nube"].storage.disk_size(vm_id)


def test_the_disk_is_the_images_size_by_default(app, host, big_image):
    with app.app_context():
        vm = core.addVm({"id": "vm1", "image": big_image, "mem": 64})
    assert vm["disk"] == 3 and disk_bytes(app, "vm1") == 3 * GIB


def test_a_larger_disk_is_grown_as_it_is_made(app, host, big_image):
    with app.app_context():
        vm = core.addVm({"id": "vm1", "image": big_image, "mem": 64, "disk": 5})
    assert vm["disk"] == 5 and disk_bytes(app, "vm1") == 5 * GIB


def test_a_disk_smaller_than_the_image_is_refused_alike_everywhere(
    app, admin_client, host, big_image
):
    vm = {"id": "vm1", "image": big_image, "mem": 64, "vcpus": 1, "disk": 2}
    with app.app_context():
        message = service_message(lambda: core.addVm(vm))
    assert message == (
        "disk must be at least 3 GiB: image big.raw is 3 GiB (its virtual size), asked 2 GiB"
    )
    form = {key: str(value) for key, value in vm.items()}
    said_by(message, page_messages(form_post(admin_client, "/vms/new", {**form, "host": ""})))
    said_by(message, api_messages(api_call(admin_client, "POST", "/vms", vm)))
    with app.app_context():
        assert core.listVms() == []
    assert list(app.extensions["nube"].storage.vms_dir.iterdir()) == []


def test_a_disk_out_of_bounds_is_refused(app, host, image):
    with app.app_context(), pytest.raises(InvalidInput, match="disk must be at least 1"):
        core.addVm({"id": "vm1", "image": image, "mem": 64, "disk": 0})


def test_the_form_shows_the_image_and_proposes_its_size(app, admin_client, host, big_image):
    doc = page(admin_client.get("/vms/new"))
    card = doc.by_id("image-facts")
    text = " ".join(card.text.split())
    assert "big.raw" in text and "OS debian-12" in text and "raw" in text
    assert "virtual size 3.0 GiB" in text and "at least 3 GiB" in text
    assert doc.by_id("vm-form").one("input", name="disk")["value"] == "3"
    assert "vm_new.js" in admin_client.get("/vms/new").get_data(as_text=True)


def test_the_form_creates_a_larger_disk(app, admin_client, host, big_image):
    form = {"id": "vm1", "image": big_image, "mem": "64", "vcpus": "1", "disk": "4", "host": ""}
    form_post(admin_client, "/vms/new", form)
    with app.app_context():
        assert core.listVms()[0]["disk"] == 4
    assert disk_bytes(app, "vm1") == 4 * GIB


def test_a_retried_create_keeps_its_disk_size(app, host, big_image, monkeypatch):
    from app.adapters.hypervisor import Hypervisor
    from app.services import retry

    def refuse(self, host, xml):
        raise core.OperationFailed("define refused, as the test asked")

    monkeypatch.setattr(Hypervisor, "define", refuse)
    with app.app_context(), pytest.raises(core.OperationFailed):
        core.addVm({"id": "vm1", "image": big_image, "mem": 64, "disk": 5})
    monkeypatch.undo()
    with app.app_context():
        failed = next(op for op in core_operations() if op["kind"] == "vm.create")
        retry.retry(failed["id"], "admin")
        assert core.listVms()[0]["disk"] == 5
    assert disk_bytes(app, "vm1") == 5 * GIB


def core_operations():
    """Every operation row, newest first (inside an app context)."""
    return [dict(r) for r in get_db().execute("SELECT * FROM operations ORDER BY id DESC")]
