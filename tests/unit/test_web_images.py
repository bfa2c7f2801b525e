"""The images page: list, upload, delete."""

import io
import subprocess

import pytest

from app import create_app
from app.services import users
from tests.conftest import ADMIN_PASSWORD, csrf_token, login, make_image
from tests.factories import gen_vm
from tests.html import page


def images_dir(app):
    """The repository's images folder."""
    return app.extensions["nube"].storage.images_dir


def files_in(folder):
    """Every file name in a folder, hidden ones included."""
    return sorted(path.name for path in folder.iterdir())


def qcow2_bytes(tmp_path, size="16M"):
    """A small empty qcow2 image made with qemu-img."""
    path = tmp_path / "made.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), size], check=True)
    return path.read_bytes()


def upload(client, content, filename, name="", description=""):
    """Post the upload form as multipart, as a browser does."""
    return client.post(
        "/images/upload",
        content_type="multipart/form-data",
        data={
            "csrf_token": csrf_token(client, "/images/"),
            "file": (io.BytesIO(content), filename),
            "name": name,
            "description": description,
        },
    )


def delete(client, name):
    """Press an image's delete button."""
    return client.post(
        f"/images/{name}/delete", data={"csrf_token": csrf_token(client, "/images/")}
    )


def image_row(client, name):
    """An image's row (<tr data-image>) on the images page; its cells are name, format,
    virtual size, size on disk, description, uploaded by, VMs, actions."""
    return page(client.get("/images/")).one("tr", data_image=name)


def flashed(client, text, category):
    """The images page's one flash message containing text, of that category."""
    return page(client.get("/images/")).alert(text, category)


def test_routes_need_login(app, image):
    client = app.test_client()
    response = client.get("/images/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    token = csrf_token(client, "/login")
    for path in ("/images/upload", f"/images/{image}/delete"):
        response = client.post(path, data={"csrf_token": token})
        assert response.status_code == 302 and "/login" in response.headers["Location"], path
    assert (images_dir(app) / image).is_file()


def test_posts_need_a_csrf_token(app, admin_client, image, tmp_path):
    response = admin_client.post(
        "/images/upload",
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(qcow2_bytes(tmp_path)), "new.qcow2")},
    )
    assert response.status_code == 400
    assert admin_client.post(f"/images/{image}/delete").status_code == 400
    assert files_in(images_dir(app)) == [image]


def test_delete_is_never_a_get(app, admin_client, image):
    assert admin_client.get(f"/images/{image}/delete").status_code == 405
    assert (images_dir(app) / image).is_file()


def test_empty_state(app, admin_client):
    doc = page(admin_client.get("/images/"))
    empty = doc.by_id("empty-state")
    assert empty.text.startswith("No images yet: upload a qcow2 or raw disk image")
    assert empty.one("code").text == str(images_dir(app))
    assert doc.by_id("upload-form")["enctype"] == "multipart/form-data"


def test_list_shows_an_image_copied_in_by_hand(app, operator_client, image):
    row = image_row(operator_client, "base.raw")
    assert row.cells()[1:4] == ["-", "raw", "64.0 MiB"]  # no OS: Nube did not write it
    delete_form = row.form("/images/base.raw/delete")
    assert delete_form.get("data-confirm")
    assert not delete_form.button("Delete").has("disabled")


def test_upload_a_qcow2(app, operator_client, tmp_path):
    response = upload(
        operator_client, qcow2_bytes(tmp_path), "disk.qcow2", description="A small test disk"
    )
    assert response.status_code == 302 and response.headers["Location"] == "/images/"
    assert files_in(images_dir(app)) == ["disk.qcow2"]
    doc = page(operator_client.get("/images/"))
    assert doc.alert("Image disk.qcow2 uploaded (qcow2).", "success")
    cells = doc.one("tr", data_image="disk.qcow2").cells()
    assert cells[1:4] == ["-", "qcow2", "16.0 MiB"]
    assert cells[6:8] == ["A small test disk", "oper"]


def test_upload_under_another_name(app, admin_client, tmp_path):
    upload(admin_client, qcow2_bytes(tmp_path), "disk.qcow2", name="debian.qcow2")
    assert files_in(images_dir(app)) == ["debian.qcow2"]


def test_upload_name_defaults_to_the_file_name_without_folders(app, admin_client, tmp_path):
    upload(admin_client, qcow2_bytes(tmp_path), "some/folder/disk.qcow2")
    assert files_in(images_dir(app)) == ["disk.qcow2"]


def test_upload_refuses_bad_names_and_non_images(app, admin_client, tmp_path):
    response = upload(admin_client, qcow2_bytes(tmp_path), "x.qcow2", name="../escape.qcow2")
    assert response.status_code == 302
    assert flashed(admin_client, "invalid image name", "danger")
    upload(admin_client, b"", "empty.raw")
    upload(admin_client, qcow2_bytes(tmp_path), "x.qcow2", name="dup.qcow2")
    upload(admin_client, qcow2_bytes(tmp_path), "x.qcow2", name="dup.qcow2")
    assert flashed(admin_client, "image dup.qcow2 already exists", "danger")
    assert files_in(images_dir(app)) == ["dup.qcow2"]
    assert not (tmp_path / "escape.qcow2").exists()


def test_upload_without_a_file(app, admin_client):
    response = admin_client.post(
        "/images/upload",
        content_type="multipart/form-data",
        data={"csrf_token": csrf_token(admin_client, "/images/")},
    )
    assert response.status_code == 302
    assert flashed(admin_client, "Image file", "danger")


def test_upload_over_the_limit_checked_by_the_service(app, admin_client):
    app.config["MAX_UPLOAD_MB"] = 1  # the request limit stays high: the service refuses
    response = upload(admin_client, b"\0" * (2 * 1024 * 1024), "big.raw")
    assert response.status_code == 302
    assert flashed(admin_client, "image is larger than 1 MB", "danger")
    assert files_in(images_dir(app)) == []


@pytest.fixture
def small_app(tmp_path, provisioner):
    """An app that accepts uploads of at most 1 MiB."""
    (tmp_path / "iaas" / "images").mkdir(parents=True)
    (tmp_path / "iaas" / "vms").mkdir()
    application = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "DATABASE": str(tmp_path / "nube.sqlite"),
            "REPOSITORY": str(tmp_path / "iaas"),
            "LIBVIRT_URI": "test:///default",
            "PROVISIONER": provisioner,
            "QUEUE": "immediate",
            "SECRET_KEY": "test-secret",
            "MAX_UPLOAD_MB": 1,
            "LOGIN_RATE_LIMIT": 1000,
        }
    )
    with application.app_context():
        users.create("admin", ADMIN_PASSWORD, "admin", "test")
    yield application
    application.extensions["nube"].hypervisor.close()


def test_upload_over_max_upload_mb_is_refused(small_app):
    client = small_app.test_client()
    login(client, "admin", ADMIN_PASSWORD)
    upload_form = page(client.get("/images/")).by_id("upload-form")
    assert "at most 1 MB" in upload_form.ancestor(class_="card-body").one("p").text
    response = upload(client, b"\0" * (2 * 1024 * 1024), "big.raw")
    assert response.status_code == 413
    assert "larger than this controller accepts" in page(response).one("p", class_="lead").text
    assert files_in(images_dir(small_app)) == []


def test_delete_refused_while_a_vm_uses_the_image(app, admin_client, host, image):
    gen_vm(app, image, "vm1")
    row = image_row(admin_client, "base.raw")
    delete_button = row.form("/images/base.raw/delete").button("Delete")
    assert delete_button.has("disabled")
    assert delete_button.ancestor("span")["title"].startswith("Used by 1 VM(s)")
    [vms_link] = row.links()
    assert vms_link["href"].startswith("/vms/?q=image") and vms_link.text == "1"
    response = delete(admin_client, image)
    assert response.status_code == 302 and response.headers["Location"] == "/images/"
    assert flashed(admin_client, "image base.raw is used by 1 VM(s): vm1", "danger")
    assert (images_dir(app) / image).is_file()


def test_delete_an_unused_image(app, admin_client, image, tmp_path):
    make_image(images_dir(app) / "other.raw", size="1M")
    response = delete(admin_client, "other.raw")
    assert response.status_code == 302
    assert flashed(admin_client, "Image other.raw deleted.", "success")
    assert files_in(images_dir(app)) == [image]
    delete(admin_client, "other.raw")
    assert flashed(admin_client, "image other.raw not found", "danger")


def test_hostile_description_is_escaped(app, admin_client, tmp_path):
    hostile = '<script>alert("x")</script>'
    upload(admin_client, qcow2_bytes(tmp_path), "disk.qcow2", description=hostile)
    html = admin_client.get("/images/").get_data(as_text=True)
    assert hostile not in html  # raw markup on purpose: the tag must not be there as markup
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert page(html).one("tr", data_image="disk.qcow2").cells()[6] == hostile  # shown as text


def test_upload_streams_into_the_repository_without_a_copy(
    app, admin_client, tmp_path, monkeypatch
):
    storage = app.extensions["nube"].storage

    def no_copy(*args, **kwargs):
        raise AssertionError("the web upload must not copy the file a second time")

    monkeypatch.setattr(storage, "save_upload", no_copy)
    upload(admin_client, qcow2_bytes(tmp_path), "streamed.qcow2")
    assert files_in(images_dir(app)) == ["streamed.qcow2"]
    assert (images_dir(app) / "streamed.qcow2").stat().st_mode & 0o777 == 0o644


def bootable_raw(size=1 << 20):
    """Raw bytes with an MBR boot signature, as a real disk's first sector has."""
    content = bytearray(size)
    content[510:512] = b"\x55\xaa"
    return bytes(content)


@pytest.mark.parametrize(
    ("filename", "content", "message"),
    [
        ("junk.qcow2", bytes(range(256)) * 64, "junk.qcow2 holds raw bytes, not a qcow2 image"),
        ("bad.txt", b"hello world\n", "must end in .qcow2, .raw, .img"),
        ("disk.iso", bootable_raw(), "must end in .qcow2, .raw, .img"),
        ("blank.raw", bytes(1 << 20), "blank.raw is raw data with no partition table or boot"),
        ("tiny.img", b"x" * 100, "tiny.img is raw data with no partition table or boot"),
    ],
)
def test_upload_refuses_what_is_not_what_its_name_says(
    app, admin_client, filename, content, message
):
    upload(admin_client, content, filename)
    assert flashed(admin_client, message, "danger")
    assert files_in(images_dir(app)) == []


def test_upload_refuses_a_qcow2_named_raw(app, admin_client, tmp_path):
    upload(admin_client, qcow2_bytes(tmp_path), "disk.raw")
    assert flashed(admin_client, "disk.raw holds a qcow2 image: its name ends in .raw", "danger")
    assert files_in(images_dir(app)) == []


def test_upload_takes_a_bootable_raw_and_a_qcow2_named_img(app, admin_client, tmp_path):
    upload(admin_client, bootable_raw(), "disk.raw")
    assert flashed(admin_client, "Image disk.raw uploaded (raw).", "success")
    upload(admin_client, qcow2_bytes(tmp_path), "cloud.img")
    assert flashed(admin_client, "Image cloud.img uploaded (qcow2).", "success")
    assert files_in(images_dir(app)) == ["cloud.img", "disk.raw"]


# Issue 9, finding 6: upload temp files never stay.


def _leftovers(app):
    return [p.name for p in app.extensions["nube"].storage.images_dir.iterdir()]


def test_several_parts_under_one_field_leave_nothing(app, admin_client):
    token = csrf_token(admin_client, "/images/")
    admin_client.post(
        "/images/upload",
        content_type="multipart/form-data",
        data={
            "csrf_token": token,
            "name": "x.raw",
            "file": [(io.BytesIO(b"a" * 4096), "a.raw"), (io.BytesIO(b"b" * 4096), "b.raw")],
        },
    )
    assert [n for n in _leftovers(app) if n.startswith(".")] == []


def test_a_body_cut_short_leaves_nothing(app, admin_client):
    token = csrf_token(admin_client, "/images/")
    boundary = "nubeboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.raw"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    body = head + b"z" * 200_000  # the client stops sending here
    response = admin_client.post(
        "/images/upload",
        input_stream=io.BytesIO(body),
        content_type=f"multipart/form-data; boundary={boundary}",
        content_length=len(body) + 1_000_000,
    )
    assert response.status_code in (400, 413)
    assert [n for n in _leftovers(app) if n.startswith(".")] == []


def test_anonymous_uploads_never_reach_the_repository(app, monkeypatch):
    images = app.extensions["nube"].storage.images_dir

    def not_for_anonymous():
        raise AssertionError("an anonymous request streamed into the repository")

    monkeypatch.setattr(app.extensions["nube"].storage, "upload_target", not_for_anonymous)
    client = app.test_client()
    response = client.post(
        "/login",
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(b"x" * 4096), "big.qcow2")},
    )
    assert response.status_code in (400, 413)
    assert list(images.iterdir()) == []
    big = client.post(
        "/hosts/new",
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(b"x" * (2 * 1024 * 1024)), "big.qcow2")},
    )
    assert big.status_code == 413  # only the upload form takes a large body
