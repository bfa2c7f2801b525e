"""One validation path: the same bad input through a dashboard form, through /api/v1 and
through app.core (or the service, where core has no function) is refused with the same message
and changes nothing; the forms and schemas take their bounds from app.limits."""

from io import BytesIO

import pytest
from wtforms.validators import Length, NumberRange

from app import core, limits
from app.db import get_db
from app.errors import InvalidInput
from app.services import hosts, images, tokens, users
from app.web.api_v1 import schemas
from app.web.auth.forms import LoginForm
from app.web.hosts.forms import HostForm
from app.web.images.forms import UploadForm
from app.web.passwords import NEW_PASSWORD, SENT_PASSWORD
from app.web.tokens.forms import TokenForm
from app.web.vms.forms import VmForm
from tests.api_client import API
from tests.conftest import ADMIN_PASSWORD, csrf_token
from tests.html import page
from tests.unit.test_web_images import qcow2_bytes

PAGE_CSRF = "/account/password"  # any page's form carries the session's CSRF token


def service_message(action):
    """The InvalidInput message the service (or app.core) gives."""
    with pytest.raises(InvalidInput) as refused:
        action()
    return str(refused.value)


def page_messages(response):
    """What a page says about a refused form: its flashed alerts and its fields' errors."""
    doc = page(response)
    return doc.alerts() + doc.field_errors()


def api_messages(response):
    """What a problem-details answer says: its detail and every field message."""
    assert response.mimetype == "application/problem+json", response.get_data(as_text=True)
    assert response.status_code in (400, 409, 422), response.get_data(as_text=True)
    body = response.get_json()
    return [body["detail"], *schemas_said(body.get("errors") or {})]


def schemas_said(errors):
    """The messages of a webargs error tree."""
    if isinstance(errors, dict):
        return [m for value in errors.values() for m in schemas_said(value)]
    if isinstance(errors, list):
        return [m for value in errors for m in schemas_said(value)]
    return [str(errors)]


def said_by(message, messages):
    """Whether one of the messages carries the service's message."""
    assert any(message in said for said in messages), (message, messages)


def form_post(client, path, data, token_page=PAGE_CSRF):
    """POST a dashboard form with its CSRF token, following the redirect."""
    return client.post(
        path, data={"csrf_token": csrf_token(client, token_page), **data}, follow_redirects=True
    )


def api_call(client, method, path, body=None, query=None):
    """The API on the logged-in session, with the CSRF token (as the dashboard's scripts)."""
    headers = {"X-CSRFToken": csrf_token(client, PAGE_CSRF)}
    return client.open(API + path, method=method, json=body, headers=headers, query_string=query)


VM_REFUSALS = [
    {"mem": 8},
    {"mem": 5_000_000},
    {"vcpus": 0},
    {"vcpus": 300},
    {"id": "../evil"},
    {"id": "v" * 64},
    {"hostname": "bad_host!"},
    {"hostname": "h" * 254},
    {"ssh_keys": "not-a-key AAAA"},
    {"user_data": "#cloud-config\n# " + "x" * limits.USER_DATA_MAX},
]


@pytest.mark.parametrize("bad", VM_REFUSALS, ids=lambda bad: next(iter(bad)))
def test_a_bad_vm_is_refused_alike_by_the_form_the_api_and_core(
    app, admin_client, host, image, bad
):
    vm = {"id": "vm1", "image": image, "mem": 64, "vcpus": 1, **bad}
    with app.app_context():
        core_vm = {**vm}
        if "ssh_keys" in bad:
            core_vm["ssh_keys"] = [bad["ssh_keys"]]
        message = service_message(lambda: core.addVm(core_vm))
    form = {key: str(value) for key, value in vm.items()}
    said_by(message, page_messages(form_post(admin_client, "/vms/new", {**form, "host": ""})))
    said_by(message, api_messages(api_call(admin_client, "POST", "/vms", core_vm)))
    with app.app_context():
        assert core.listVms() == []
    assert list(app.extensions["nube"].storage.vms_dir.iterdir()) == []


HOST_REFUSALS = [
    {"address": "bad address!"},
    {"name": "bad name"},
    {"name": "n" * 64},
    {"user": "Root!"},
    {"network": "bad net!"},
    {"network": "bridge:" + "b" * 65},
    {"data_address": "not an address"},
    {"password": "p" * (limits.HOST_PASSWORD_MAX + 1)},
]


@pytest.mark.parametrize("bad", HOST_REFUSALS, ids=lambda bad: next(iter(bad)))
def test_a_bad_host_is_refused_alike_by_the_form_the_api_and_core(app, admin_client, bad):
    host = {"address": "127.0.0.9", "user": "nube", "name": "h9", **bad}
    with app.app_context():
        message = service_message(lambda: core.addHost({**host, "prepare": False}))
    form = {"share": "nfs", "network": "default", **host}  # no "prepare": the box unticked
    said_by(message, page_messages(form_post(admin_client, "/hosts/new", form)))
    said_by(
        message, api_messages(api_call(admin_client, "POST", "/hosts", {**host, "prepare": False}))
    )
    with app.app_context():
        assert core.listHosts() == []


USER_REFUSALS = [
    {"password": "short"},
    {"password": "p" * (limits.PASSWORD_MAX + 1)},
    {"username": "bad name"},
    {"username": "u" * (limits.USERNAME_MAX + 1)},
]


@pytest.mark.parametrize(
    "bad", USER_REFUSALS, ids=lambda bad: f"{next(iter(bad))}-{len(next(iter(bad.values())))}"
)
def test_a_bad_user_is_refused_alike_by_the_form_the_api_and_the_service(app, admin_client, bad):
    user = {"username": "eve", "password": "long-enough-1", "role": "operator", **bad}
    with app.app_context():
        message = service_message(lambda: users.create(**user, actor="test"))
    form = {**user, "confirm": user["password"]}
    said_by(message, page_messages(form_post(admin_client, "/users/", form)))
    said_by(message, api_messages(api_call(admin_client, "POST", "/users", user)))
    with app.app_context():
        assert [u.username for u in users.all_users()] == ["admin", "oper"]


@pytest.mark.parametrize("lines", [0, limits.BOOT_LOG_LINES.maximum + 1])
def test_boot_log_lines_are_bounded_alike_by_the_api_and_core(
    app, admin_client, host, image, lines
):
    with app.app_context():
        core.addVm({"id": "vm1", "image": image, "mem": 64})
        message = service_message(lambda: core.consoleLog("vm1", lines))
    response = api_call(admin_client, "GET", "/vms/vm1/boot-log", query={"lines": lines})
    said_by(message, api_messages(response))


def test_a_long_token_name_is_refused_alike_by_the_form_and_the_service(app, admin_client):
    name = "n" * (limits.TOKEN_NAME_MAX + 1)
    with app.app_context():
        admin = users.get(1)
        message = service_message(lambda: tokens.create(admin, name, None, "test"))
    form = {"name": name, "expiry": "30", "password": ADMIN_PASSWORD}
    said_by(message, page_messages(form_post(admin_client, "/tokens/", form)))
    with app.app_context():
        assert tokens.page(admin)[1] == 0


def test_a_long_image_description_is_refused_alike_by_the_form_the_api_and_the_service(
    app, admin_client, tmp_path
):
    description = "d" * (limits.IMAGE_DESCRIPTION_MAX + 1)
    body = qcow2_bytes(tmp_path)
    with app.app_context():
        message = service_message(lambda: images.upload("up.raw", BytesIO(body), description, "t"))
    form = {"file": (BytesIO(body), "up.raw"), "description": description}
    token = csrf_token(admin_client, "/images/")
    response = admin_client.post(
        "/images/upload", data={"csrf_token": token, **form}, follow_redirects=True
    )
    said_by(message, page_messages(response))
    headers = {"X-CSRFToken": token, "Content-Type": "application/octet-stream"}
    response = admin_client.put(
        f"{API}/images/up.raw",
        data=body,
        headers=headers,
        query_string={"description": description},
    )
    said_by(message, api_messages(response))
    assert not (app.extensions["nube"].storage.images_dir / "up.raw").exists()


def test_a_malformed_fingerprint_is_refused_alike_by_the_form_the_api_and_the_service(
    app, admin_client, host
):
    with app.app_context():
        message = service_message(lambda: hosts.accept_host_key(host["id"], "SHA256:short", "t"))
    path = f"/hosts/{host['id']}"
    response = form_post(admin_client, f"{path}/accept-key", {"fingerprint": "SHA256:short"}, path)
    said_by(message, page_messages(response))
    response = api_call(
        admin_client, "POST", f"/hosts/{host['id']}/accept-key", {"fingerprint": "SHA256:short"}
    )
    said_by(message, api_messages(response))
    with app.app_context():
        assert (
            get_db()
            .execute("SELECT COUNT(*) FROM audit WHERE action = 'host.accept_key'")
            .fetchone()[0]
            == 0
        )


def _form_bounds(unbound_field, kind):
    """The validators of one kind on a form's (unbound) field."""
    return [v for v in unbound_field.kwargs["validators"] if isinstance(v, kind)]


def _schema_bounds(schema, field):
    """The validators on a schema's field."""
    return schema().fields[field].validators


def test_the_forms_take_their_bounds_from_the_limits():
    ranges = _form_bounds(VmForm.mem, NumberRange)
    assert [(r.min, r.max, r.message) for r in ranges] == [
        (limits.MEM.minimum, None, limits.MEM.too_small),
        (None, limits.MEM.maximum, limits.MEM.too_large),
    ]
    ranges = _form_bounds(VmForm.vcpus, NumberRange)
    assert [(r.min, r.max) for r in ranges] == [
        (limits.VCPUS.minimum, None),
        (None, limits.VCPUS.maximum),
    ]
    assert (NEW_PASSWORD.min, NEW_PASSWORD.max) == (limits.PASSWORD_MIN, limits.PASSWORD_MAX)
    assert NEW_PASSWORD.message == limits.PASSWORD_MESSAGE
    assert SENT_PASSWORD.max == limits.PASSWORD_MAX
    (name_length,) = _form_bounds(TokenForm.name, Length)
    assert (name_length.max, name_length.message) == (
        limits.TOKEN_NAME_MAX,
        limits.TOKEN_NAME_MESSAGE,
    )
    (password_length,) = _form_bounds(HostForm.password, Length)
    assert password_length.max == limits.HOST_PASSWORD_MAX
    (description_length,) = _form_bounds(UploadForm.description, Length)
    assert description_length.max == limits.IMAGE_DESCRIPTION_MAX
    (username_length,) = _form_bounds(LoginForm.username, Length)
    assert username_length.max == limits.USERNAME_MAX


def test_the_schemas_take_their_bounds_from_the_limits():
    for field, bounds in (("mem", limits.MEM), ("vcpus", limits.VCPUS)):
        ranges = _schema_bounds(schemas.VmCreate, field)
        assert [(r.min, r.max, r.error) for r in ranges] == [
            (bounds.minimum, None, bounds.too_small),
            (None, bounds.maximum, bounds.too_large),
        ]
    ranges = _schema_bounds(schemas.BootLogArgs, "lines")
    assert [(r.min, r.max) for r in ranges] == [(1, None), (None, limits.BOOT_LOG_LINES.maximum)]
    for schema in (schemas.UserCreate, schemas.UserUpdate):
        (length,) = _schema_bounds(schema, "password")
        assert (length.min, length.max) == (limits.PASSWORD_MIN, limits.PASSWORD_MAX)
    for schema in (schemas.HostCreate, schemas.HostUpdate):
        (length,) = _schema_bounds(schema, "password")
        assert length.max == limits.HOST_PASSWORD_MAX
    (length,) = _schema_bounds(schemas.ImageUploadArgs, "description")
    assert length.max == limits.IMAGE_DESCRIPTION_MAX


def test_the_openapi_document_shows_the_limits(app, admin_api):
    spec = admin_api.get("/openapi.json").get_json()
    vm = spec["components"]["schemas"]["VmCreate"]["properties"]
    assert (vm["mem"]["minimum"], vm["mem"]["maximum"]) == (limits.MEM.minimum, limits.MEM.maximum)
    assert vm["id"]["pattern"] == f"^{limits.NAME_PATTERN}$"


BUILD_REFUSALS = [
    {"name": "bad name"},
    {"name": "n" * (limits.IMAGE_NAME_MAX + 1)},
    {"release": "Bad!"},
    {"size": "1G"},
    {"size": "lots"},
    {"size": "9" * 21},
]


@pytest.mark.parametrize("bad", BUILD_REFUSALS, ids=lambda bad: next(iter(bad)))
def test_a_bad_image_build_is_refused_alike_by_the_form_the_api_and_core(app, admin_client, bad):
    spec = {"name": "deb", "release": "bookworm", "size": "4G", **bad}
    with app.app_context():
        message = service_message(lambda: core.buildImage(spec))
    form = {f"build-{key}": value for key, value in spec.items()}
    said_by(message, page_messages(form_post(admin_client, "/images/build", form)))
    said_by(message, api_messages(api_call(admin_client, "POST", "/images/build", spec)))
    with app.app_context():
        assert get_db().execute("SELECT COUNT(*) FROM operations").fetchone()[0] == 0
