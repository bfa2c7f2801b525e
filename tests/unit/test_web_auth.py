"""Login, logout, CSRF, login everywhere, security headers and cookies."""

import re

import pytest

from app import core
from app.db import get_db
from app.web import api_v1, json_body
from tests.conftest import ADMIN_PASSWORD, csrf_token, login
from tests.html import page

PUBLIC = {"auth.login", "static", "bootstrap.static"}
_ARG = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def _url(rule):
    """A concrete URL for a rule: int arguments 1, every other argument 'x'."""
    return _ARG.sub(lambda m: "1" if m.group(1) == "int" else "x", rule.rule)


def _rules(app, method):
    """(endpoint, url) of every non-public rule answering a method."""
    return sorted(
        (rule.endpoint, _url(rule))
        for rule in app.url_map.iter_rules()
        if rule.endpoint not in PUBLIC and method in rule.methods
    )


def test_login_page_works(app):
    response = app.test_client().get("/login")
    assert response.status_code == 200
    form = page(response).by_id("login-form")
    assert form.field("csrf_token")["type"] == "hidden" and form.field("csrf_token")["value"]


def test_login_then_overview(app):
    client = app.test_client()
    response = login(client, "admin", ADMIN_PASSWORD)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert client.get("/").status_code == 200


def test_wrong_password_refused(app):
    client = app.test_client()
    response = login(client, "admin", "not-the-password")
    assert response.status_code == 401
    assert page(response).alert("Wrong user name or password.", "danger")
    assert client.get("/").status_code == 302


def test_unknown_user_refused_like_a_wrong_password(app):
    response = login(app.test_client(), "nobody", "whatever-password")
    assert response.status_code == 401
    assert page(response).alert("Wrong user name or password.", "danger")


def test_login_rate_limit(app):
    app.config["LOGIN_RATE_LIMIT"] = 2
    client = app.test_client()
    assert login(client, "admin", "wrong-1").status_code == 401
    assert login(client, "admin", "wrong-2").status_code == 401
    response = login(client, "admin", ADMIN_PASSWORD)  # even the right password now waits
    assert response.status_code == 429
    assert page(response).alert("too many failed logins", "danger")
    assert client.get("/").status_code == 302


def test_logout_is_post_only(admin_client):
    assert admin_client.get("/logout").status_code == 405
    assert admin_client.get("/").status_code == 200  # still logged in


def test_logout_needs_csrf(admin_client):
    response = admin_client.post("/logout")
    assert response.status_code == 400
    assert admin_client.get("/").status_code == 200  # still logged in


def test_logout(admin_client):
    token = csrf_token(admin_client, "/")
    response = admin_client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
    assert admin_client.get("/").status_code == 302


@pytest.mark.parametrize(
    "target", ["https://evil.example", "//evil.example/x", "http://evil.example/", "javascript:x"]
)
def test_next_open_redirect_refused(app, target):
    client = app.test_client()
    token = csrf_token(client, "/login")
    response = client.post(
        "/login",
        query_string={"next": target},
        data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_next_local_path_followed(app):
    client = app.test_client()
    token = csrf_token(client, "/login")
    response = client.post(
        "/login",
        query_string={"next": "/operations/"},
        data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": token},
    )
    assert response.headers["Location"] == "/operations/"


API_PUBLIC = api_v1.PUBLIC_ENDPOINTS  # the API's description: no secret


def test_every_page_needs_login(app):
    client = app.test_client()
    gets = _rules(app, "GET")
    assert len(gets) > 5
    for endpoint, url in gets:
        response = client.get(url)
        if endpoint in API_PUBLIC:
            assert response.status_code == 200, (endpoint, url)
            continue
        if url.startswith("/api/v1"):  # the HTTP API: a Bearer challenge, as problem details
            assert response.status_code == 401, (endpoint, url)
            assert response.mimetype == "application/problem+json", (endpoint, url)
            continue
        if url.startswith("/live/"):  # JSON for the live scripts: 401, never a login page
            assert response.status_code == 401, (endpoint, url)
            assert response.get_json() == {"error": "login required"}, (endpoint, url)
            continue
        assert response.status_code == 302, (endpoint, url)
        assert response.headers["Location"].startswith("/login"), (endpoint, url)


def test_every_post_needs_login(app):
    client = app.test_client()
    token = csrf_token(client, "/login")  # a valid token, so only the login check can refuse
    posts = [rule for rule in _rules(app, "POST") if rule[0] != "auth.login"]
    assert posts
    for endpoint, url in posts:
        response = client.post(url, data={"csrf_token": token})
        if url.startswith("/api/v1"):
            assert response.status_code == 401, (endpoint, url)
            continue
        assert response.status_code == 302, (endpoint, url)
        assert response.headers["Location"].startswith("/login"), (endpoint, url)


def test_every_post_needs_csrf(app, admin_client):
    posts = _rules(app, "POST")
    assert ("auth.logout", "/logout") in posts
    for endpoint, url in posts:
        response = admin_client.post(url, data={})
        if url.startswith("/api/v1"):  # a session on the API: the CSRF header, or 403
            assert response.status_code == 403, (endpoint, url)
            assert "CSRF" in response.get_json()["detail"], (endpoint, url)
            continue
        assert response.status_code == 400, (endpoint, url)
    assert admin_client.get("/").status_code == 200  # nothing logged us out


def test_bad_csrf_token_refused(admin_client):
    response = admin_client.post("/logout", data={"csrf_token": "forged"})
    assert response.status_code == 400
    assert "Form expired" in page(response).one("h1").text


def test_security_headers(app, admin_client):
    login_page = app.test_client().get("/login")
    assert login_page.status_code == 200
    for response in (login_page, admin_client.get("/"), admin_client.get("/nope")):
        headers = response.headers
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "same-origin"
        csp = headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp


def test_session_cookie_httponly(app):
    client = app.test_client()
    response = login(client, "admin", ADMIN_PASSWORD)
    cookies = response.headers.getlist("Set-Cookie")
    session = [c for c in cookies if c.startswith(app.config["SESSION_COOKIE_NAME"] + "=")]
    assert session
    assert all("HttpOnly" in c for c in session)
    assert all("SameSite=Lax" in c for c in session)


def test_no_inline_script(admin_client):
    for url in ("/", "/operations/", "/users/", "/users/audit"):
        inline = page(admin_client.get(url)).find_all("script", src=False)
        assert inline == [], url


DEEP_JSON = "[" * 1000 + "]" * 1000  # deep enough to exhaust Python's recursion limit


def test_a_deeply_nested_json_body_is_a_400_on_every_route(app, admin_client):
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    with_body = {
        (path, method.upper())
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if isinstance(op, dict) and "requestBody" in op
    }
    assert ("/api/v1/vms", "POST") in with_body and (
        "/api/v1/users/{user_id}",
        "PATCH",
    ) in with_body
    token = csrf_token(admin_client, "/account/password")
    for method in ("POST", "PATCH"):
        for rule in app.url_map.iter_rules():
            if method not in rule.methods or rule.endpoint == "auth.logout":  # stay logged in
                continue
            api = rule.rule.startswith("/api/v1")
            response = admin_client.open(  # the session reaches the API too, with CSRF
                _url(rule),
                method=method,
                data=DEEP_JSON,
                content_type="application/json",
                headers={"X-CSRFToken": token},
            )
            assert response.status_code < 500, (method, rule.rule)
            documented = _ARG.sub(lambda m: "{" + m.group(2) + "}", rule.rule)
            if api and (documented, method) in with_body:
                assert response.status_code == 400, (method, rule.rule)
                assert response.mimetype == "application/problem+json"
                assert "nests deeper than 32 levels" in response.get_json()["detail"]
    response = admin_client.post(
        "/account/password",
        data=DEEP_JSON,
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 400  # Flask-WTF reads a JSON body as the form: refused
    assert admin_client.get("/hosts/").status_code == 200


def test_brackets_inside_json_strings_are_text_not_depth():
    text = '{"user_data": "#!/bin/sh\\necho \\"[[[[' + "[" * 100 + '\\"", "ssh_keys": [[[]]]}'
    json_body.check_depth(text)  # no error: only three levels open
    json_body.check_depth(text.encode())
    with pytest.raises(ValueError, match="nests deeper than 32 levels"):
        json_body.check_depth(b'{"a": ' * 33 + b"1" + b"}" * 33)


def test_an_action_from_an_ended_session_does_nothing_and_returns_to_its_page(
    app, admin_client, host, image
):
    with app.app_context():
        core.addVm({"id": "vm1", "image": image, "mem": 64})
    token = csrf_token(admin_client, "/vms/vm1")
    with app.app_context():
        get_db().execute("DELETE FROM user_sessions")  # the session ended (idle, revoked)
    response = admin_client.post(
        "/vms/vm1/start",
        data={"csrf_token": token},
        headers={"Referer": "http://localhost/vms/vm1"},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/vms/vm1"
    login_page = page(admin_client.get(response.headers["Location"]))
    assert login_page.alert("Your session ended, so nothing was done", "warning")
    response = login(admin_client, "admin", ADMIN_PASSWORD, next_="/vms/vm1")
    assert response.headers["Location"] == "/vms/vm1"
    with app.app_context():
        assert core.listVms()[0]["state"] == "stopped"


@pytest.mark.parametrize(
    ("next_", "expected"),
    [
        ("/vms/vm1/start", "/"),  # POST-only: a GET there is a 405
        ("/vms/", "/vms/"),
        ("/operations/?q=failed", "/operations/?q=failed"),
        ("https://elsewhere.example/", "/"),
        ("//elsewhere.example/", "/"),
    ],
)
def test_after_login_only_pages_a_get_can_open(app, admin_client, next_, expected):
    admin_client.post("/logout", data={"csrf_token": csrf_token(admin_client, "/")})
    response = login(admin_client, "admin", ADMIN_PASSWORD, next_=next_)
    assert response.headers["Location"] == expected


def test_a_referer_from_another_site_is_not_followed(app, admin_client):
    token = csrf_token(admin_client, "/")
    with app.app_context():
        get_db().execute("DELETE FROM user_sessions")
    response = admin_client.post(
        "/vms/vm1/start",
        data={"csrf_token": token},
        headers={"Referer": "https://elsewhere.example/vms/vm1"},
    )
    assert response.headers["Location"] == "/login"


def test_a_utf16_body_cannot_hide_its_depth(app, admin_client):
    """U+2241 is the bytes 41 22 in UTF-16-LE (a stray '"'), U+5D5D is 5D 5D ('] ]'): a scan
    of the raw bytes counted the depth far below zero, and the parser then recursed."""
    hidden = "\u2241" + "\u5d5d" * 600 + "\u2241"
    body = ('["' + hidden + '",' + "[" * 1000 + "]" * 1000 + "]").encode("utf-16-le")
    anonymous = app.test_client()
    token = csrf_token(anonymous, "/login")
    response = anonymous.post(
        "/login", data=body, content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert response.status_code == 400
    token = csrf_token(admin_client, "/account/password")
    response = admin_client.post(
        "/api/v1/vms", data=body, content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert response.status_code == 400 and response.mimetype == "application/problem+json"
    assert json_body.parse('{"a": [1]}'.encode("utf-16")) == {"a": [1]}  # as json.loads reads
