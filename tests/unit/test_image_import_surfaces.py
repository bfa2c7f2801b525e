"""The image import on every surface: the Images page's "Import from URL" form, POST
/api/v1/images/import, and `nube image import`; one message for bad input on each."""

import pytest

from app.services import users
from tests.api_client import Api, assert_problem, make_token
from tests.conftest import csrf_token, login
from tests.html import page
from tests.unit import test_client
from tests.unit.test_image_import import (  # noqa: F401  (the fixtures)
    config_overrides,
    leftovers,
    operations,
    qcow2_bytes,
    server,
    sha,
)

# test_client.py's fixtures: the client in-process, the served app, logged in with a token
nube = test_client.nube
served = test_client.served
token = test_client.token
logged_in = test_client.logged_in


@pytest.fixture
def api(app):
    """The API as the admin calls it."""
    return Api(app, make_token(app))


def post_import(client, **fields):
    """Submit the images page's import form."""
    data = {"import-csrf_token": csrf_token(client, "/images/")}
    data.update({f"import-{key}": value for key, value in fields.items()})
    return client.post("/images/import", data=data)


def test_the_images_page_offers_the_import_form(app, operator_client):
    form = page(operator_client.get("/images/")).by_id("import-form")
    assert form["action"] == "/images/import" and form["method"] == "post"
    for name in ("name", "url", "sha256", "checksums_url", "os"):
        assert form.one("input", name=f"import-{name}")


def test_members_see_no_import_form(app):
    with app.app_context():
        users.create("ana", "ana-password-1", "member", "test")
    client = app.test_client()
    login(client, "ana", "ana-password-1")
    assert 'id="import-form"' not in client.get("/images/").get_data(as_text=True)


def test_the_form_imports_and_the_page_shows_what_the_image_is(
    app,
    operator_client,
    server,  # noqa: F811
    tmp_path,
):
    base, routes = server
    body = qcow2_bytes(tmp_path)
    routes.routes["/d.qcow2"] = {"body": body}
    response = post_import(
        operator_client, name="deb", url=f"{base}/d.qcow2", sha256=sha(body), os="debian-12"
    )
    op = operations(app)[-1]
    assert response.status_code == 302
    assert response.headers["Location"] == f"/operations/{op['id']}"
    # the unit tier's queue runs operations at once
    assert (op["kind"], op["requested_by"], op["status"]) == ("image.import", "oper", "succeeded")
    html = page(operator_client.get("/images/"))
    row = html.one("tr", **{"data-image": "deb.qcow2"})
    assert row.one("td", class_="image-os").text.strip() == "debian-12"
    source = row.one("td", class_="image-source").text
    assert "import" in source and f"{base}/d.qcow2" in source and sha(body)[:12] in source


def test_the_form_refuses_bad_input(app, admin_client):
    response = post_import(admin_client, name="x", url="file:///etc/passwd")
    assert response.status_code == 302 and response.headers["Location"] == "/images/"
    shown = page(admin_client.get("/images/"))
    assert shown.alert("url must be http:// or https://, not file://", "danger")
    response = post_import(admin_client, name="x", url="http://e.org/x", sha256="abc")
    assert page(admin_client.get("/images/")).alert("64 hexadecimal digits", "danger")
    assert operations(app) == [] and leftovers(app) == []


def test_the_api_imports(app, api, server, tmp_path):  # noqa: F811
    base, routes = server
    body = qcow2_bytes(tmp_path)
    routes.routes["/d.qcow2"] = {"body": body}
    answer = api.post("/images/import", {"name": "deb", "url": f"{base}/d.qcow2", "os": "d-12"})
    assert answer.status_code == 202, answer.get_data(as_text=True)
    assert answer.get_json()["operation"]["status"] == "succeeded"
    shown = api.get("/images/deb.qcow2").get_json()
    assert (shown["os"], shown["source"], shown["sha256"]) == ("d-12", "import", sha(body))


def test_the_api_refuses_bad_input_and_images_import_is_no_image(app, api):
    assert_problem(api.post("/images/import", {"name": "x"}), 422)
    assert_problem(
        api.post("/images/import", {"name": "x", "url": "http://a:b@e.org/x"}),
        422,
        "url must not carry credentials",
    )
    for method in ("GET", "DELETE"):  # never read as an image called "import"
        assert_problem(api.call(method, "/images/import"), 405)
    assert operations(app) == []


def test_the_client_imports(app, nube, logged_in, server, tmp_path):  # noqa: F811
    base, routes = server
    body = qcow2_bytes(tmp_path)
    routes.routes["/d.qcow2"] = {"body": body}
    run = nube("image", "import", "deb", f"{base}/d.qcow2", "--sha256", sha(body), "--wait")
    assert run.code == 0, run.err
    assert leftovers(app) == ["deb.qcow2"]
    assert "debian" not in run.err
    run = nube("image", "list")
    assert "deb.qcow2" in run.out
    run = nube("image", "import", "x", "file:///etc/passwd")
    assert run.code == 3 and "url must be http:// or https://" in run.err
