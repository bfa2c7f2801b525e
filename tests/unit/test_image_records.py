"""Images know what they are (migration 20): a build records its OS, checksum and source, an
upload its checksum and source; the list (service and API) shows them; a file found in images/
without a record shows none; a member is not told the URL an image came from."""

import hashlib
import io

import pytest

from app import core
from app.db import get_db
from app.repositories import images as images_repo
from app.services import images
from app.services.image_spec import os_of
from tests.api_client import Api, make_token
from tests.factories import gen_image, make_image
from tests.unit.test_image_build import fake  # noqa: F401  (the fake command runner)

WHAT = ("os", "sha256", "source", "source_url")


@pytest.fixture
def api(app):
    """The API as the admin calls it."""
    return Api(app, make_token(app))


def what(image):
    """The fields that say what an image is."""
    return {key: image[key] for key in WHAT}


def test_the_images_table_has_the_new_columns(app):
    with app.app_context():
        conn = get_db()
        images_repo.record(
            conn,
            "a.qcow2",
            uploaded_by="admin",
            source="vm",
            os="debian-12",
            checksum="a" * 64,
            source_url=None,
        )
        row = conn.execute(
            "SELECT os, sha256, source, source_url FROM images WHERE name = 'a.qcow2'"
        ).fetchone()
    assert tuple(row) == ("debian-12", "a" * 64, "vm", None)


def test_a_record_names_a_known_source(app):
    with app.app_context(), pytest.raises(ValueError, match="unknown image source"):
        images_repo.record(get_db(), "a.qcow2", uploaded_by="admin", source="ftp")


def test_a_build_records_its_os_checksum_and_source(app, fake):  # noqa: F811
    with app.app_context():
        core.buildImage({"name": "debian12", "release": "bookworm", "size": "2G"})
        (image,) = images.search()
    path = app.extensions["nube"].storage.images_dir / "debian12.qcow2"
    assert what(image) == {
        "os": "debian-12",
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "source": "build",
        "source_url": None,
    }


def test_debian_releases_are_named_by_version():
    assert os_of("bookworm") == "debian-12"
    assert os_of("trixie") == "debian-13"
    assert os_of("sid") == "debian-sid"


def test_an_upload_records_its_checksum_and_source(app, tmp_path):
    data = make_image(tmp_path / "up.qcow2", fmt="qcow2").read_bytes()
    with app.app_context():
        images.upload("up.qcow2", io.BytesIO(data), "mine", "admin")
        (image,) = images.search()
    assert what(image) == {
        "os": None,
        "sha256": hashlib.sha256(data).hexdigest(),
        "source": "upload",
        "source_url": None,
    }
    assert (image["description"], image["uploaded_by"]) == ("mine", "admin")


def test_a_file_found_in_images_has_no_record(app, api):
    gen_image(app, "found.raw")
    with app.app_context():
        (image,) = images.search()
    assert what(image) == dict.fromkeys(WHAT)
    shown = api.get("/images/found.raw").get_json()
    assert what(shown) == dict.fromkeys(WHAT) and shown["format"] == "raw"


def test_the_api_shows_what_an_image_is(app, api):
    gen_image(app, "imported.raw")
    with app.app_context():
        images_repo.record(
            get_db(),
            "imported.raw",
            uploaded_by="admin",
            source="import",
            os="ubuntu-24.04",
            checksum="b" * 64,
            source_url="https://cloud-images.example/noble.img",
        )
    shown = api.get("/images/imported.raw").get_json()
    assert what(shown) == {
        "os": "ubuntu-24.04",
        "sha256": "b" * 64,
        "source": "import",
        "source_url": "https://cloud-images.example/noble.img",
    }


def test_a_member_is_not_told_where_an_image_came_from(app):
    gen_image(app, "imported.raw")
    with app.app_context():
        from app.services import users

        users.create("ana", "ana-password-1", "member", "test")
        images_repo.record(
            get_db(),
            "imported.raw",
            uploaded_by="admin",
            source="import",
            os="debian-12",
            source_url="http://10.0.0.9/mirror/d.img",
        )
        with core.acting_as("ana"):
            (image,) = images.search()
    assert (image["os"], image["source"], image["source_url"]) == ("debian-12", "import", None)
