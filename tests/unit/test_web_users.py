"""User management and the audit log: admins only."""

import pytest

from app.db import get_db
from app.services import users
from tests.conftest import ADMIN_PASSWORD, OPERATOR_PASSWORD, csrf_token, login
from tests.html import page


def _user_id(app, username):
    """The id of a user by name."""
    with app.app_context():
        return next(u.id for u in users.all_users() if u.username == username)


def _role(app, username):
    """The role of a user by name."""
    with app.app_context():
        return next(u.role for u in users.all_users() if u.username == username)


def _post(client, url, **data):
    """POST a users form with a valid CSRF token, following the redirect."""
    data["csrf_token"] = csrf_token(client, "/account/password")
    return client.post(url, data=data, follow_redirects=True)


@pytest.mark.parametrize("url", ["/users/", "/users/audit"])
def test_operator_forbidden_pages(operator_client, url):
    response = operator_client.get(url)
    assert response.status_code == 403
    doc = page(response)
    assert doc.one("h1").text == "403 · Forbidden"
    assert doc.one("nav", class_="navbar")  # the dashboard's own error page, not a bare one


def test_operator_forbidden_posts(app, operator_client):
    admin_id = _user_id(app, "admin")
    token = csrf_token(operator_client, "/account/password")
    posts = {
        "/users/": {
            "username": "sneaky",
            "role": "admin",
            "password": "password-123",
            "confirm": "password-123",
        },
        f"/users/{admin_id}/role": {"role": "operator"},
        f"/users/{admin_id}/password": {"password": "password-123", "confirm": "password-123"},
        f"/users/{admin_id}/remove": {},
    }
    for url, data in posts.items():
        response = operator_client.post(url, data={**data, "csrf_token": token})
        assert response.status_code == 403, url
    assert _role(app, "admin") == "admin"
    with app.app_context():
        assert [u.username for u in users.all_users()] == ["admin", "oper"]


def test_operator_has_no_users_links(operator_client):
    doc = page(operator_client.get("/"))
    assert not [url for url in doc.hrefs() + doc.actions() if "/users/" in url]


def test_admin_lists_users(admin_client):
    response = admin_client.get("/users/")
    assert response.status_code == 200
    doc = page(response)
    assert [row["data-user"] for row in doc.rows(data_user=True)] == ["admin", "oper"]
    assert doc.one("form", data_confirm="Remove user oper?")["action"].endswith("/remove")


def test_admin_adds_a_user_who_can_log_in(app, admin_client):
    response = _post(
        admin_client,
        "/users/",
        username="newbie",
        role="operator",
        password="newbie-password",
        confirm="newbie-password",
    )
    doc = page(response)
    assert doc.alert("User newbie added (operator).", "success")
    assert doc.one("tr", data_user="newbie")
    client = app.test_client()
    assert login(client, "newbie", "newbie-password").status_code == 302
    assert client.get("/").status_code == 200
    assert client.get("/users/").status_code == 403


def test_add_user_passwords_must_match(app, admin_client):
    response = _post(
        admin_client,
        "/users/",
        username="newbie",
        role="operator",
        password="newbie-password",
        confirm="other-password",
    )
    assert "Passwords differ" in page(response).field_errors()
    with app.app_context():
        assert "newbie" not in [u.username for u in users.all_users()]


def test_add_duplicate_user_refused(admin_client):
    response = _post(
        admin_client,
        "/users/",
        username="oper",
        role="operator",
        password="another-pass",
        confirm="another-pass",
    )
    assert page(response).alert("user oper already exists", "danger")


def test_admin_changes_a_role(app, admin_client):
    oper_id = _user_id(app, "oper")
    response = _post(admin_client, f"/users/{oper_id}/role", role="admin")
    assert page(response).alert("Role changed to admin.", "success")
    assert _role(app, "oper") == "admin"


def test_unknown_role_refused(app, admin_client):
    oper_id = _user_id(app, "oper")
    response = _post(admin_client, f"/users/{oper_id}/role", role="root")
    assert page(response).alert("Not a valid choice", "danger")
    assert _role(app, "oper") == "operator"


def test_last_admin_keeps_the_role(app, admin_client):
    admin_id = _user_id(app, "admin")
    response = _post(admin_client, f"/users/{admin_id}/role", role="operator")
    assert page(response).alert("the last admin cannot lose the admin role", "danger")
    assert _role(app, "admin") == "admin"


def test_admin_resets_a_password(app, admin_client):
    oper_id = _user_id(app, "oper")
    response = _post(
        admin_client,
        f"/users/{oper_id}/password",
        password="fresh-password",
        confirm="fresh-password",
    )
    assert page(response).alert("Password reset.", "success")
    assert login(app.test_client(), "oper", OPERATOR_PASSWORD).status_code == 401
    assert login(app.test_client(), "oper", "fresh-password").status_code == 302


def test_reset_password_too_short_refused(app, admin_client):
    oper_id = _user_id(app, "oper")
    response = _post(admin_client, f"/users/{oper_id}/password", password="short", confirm="short")
    assert page(response).alert("New password: password must be 8 to 256 characters long", "danger")
    assert login(app.test_client(), "oper", OPERATOR_PASSWORD).status_code == 302


def test_the_forms_refuse_a_password_no_login_could_send(app, admin_client):
    long = "p" * 257
    oper_id = _user_id(app, "oper")
    response = _post(admin_client, f"/users/{oper_id}/password", password=long, confirm=long)
    assert page(response).alert("New password: password must be 8 to 256 characters long", "danger")
    response = _post(
        admin_client, "/users/", username="eve", role="operator", password=long, confirm=long
    )
    assert "must be 8 to 256 characters long" in response.get_data(as_text=True)
    assert [u.username for u in _all_users(app)] == ["admin", "oper"]
    data = {"current": ADMIN_PASSWORD, "new": long, "confirm": long}
    response = _post(admin_client, "/account/password", **data)
    assert "must be 8 to 256 characters long" in response.get_data(as_text=True)
    assert login(app.test_client(), "oper", OPERATOR_PASSWORD).status_code == 302
    assert login(app.test_client(), "admin", ADMIN_PASSWORD).status_code == 302


def test_a_refused_own_password_reset_changes_nothing(app, admin_client):
    admin_id = _user_id(app, "admin")
    response = _post(
        admin_client, f"/users/{admin_id}/password", password="x" * 12, confirm="x" * 12
    )
    assert page(response).alert("use Change password for your own account", "danger")
    assert login(app.test_client(), "admin", ADMIN_PASSWORD).status_code == 302


def _all_users(app):
    """Every user."""
    with app.app_context():
        return users.all_users()


def test_admin_cannot_remove_themselves(app, admin_client):
    admin_id = _user_id(app, "admin")
    response = _post(admin_client, f"/users/{admin_id}/remove")
    assert page(response).alert("you cannot remove your own account", "danger")
    assert _role(app, "admin") == "admin"


def test_last_admin_cannot_be_removed(app, admin_client):
    # Any other admin acting means two admins exist, so the last admin can only be the
    # acting one: with two admins one removal works, then the one left stays.
    with app.app_context():
        users.create("second", "second-password", "admin", "test")
    second = app.test_client()
    assert login(second, "second", "second-password").status_code == 302
    response = _post(second, f"/users/{_user_id(app, 'admin')}/remove")
    assert page(response).alert("User removed.", "success")
    response = _post(second, f"/users/{_user_id(app, 'second')}/remove")
    assert page(response).alert("you cannot remove your own account", "danger")
    response = _post(second, f"/users/{_user_id(app, 'second')}/role", role="operator")
    assert page(response).alert("the last admin cannot lose the admin role", "danger")
    assert _role(app, "second") == "admin"


def test_remove_a_user(app, admin_client):
    oper_id = _user_id(app, "oper")
    response = _post(admin_client, f"/users/{oper_id}/remove")
    assert page(response).alert("User removed.", "success")
    assert login(app.test_client(), "oper", OPERATOR_PASSWORD).status_code == 401


def test_audit_shows_logins_logouts_and_user_changes(app, admin_client):
    other = app.test_client()
    login(other, "oper", "wrong-password")
    login(other, "oper", OPERATOR_PASSWORD)
    other.post("/logout", data={"csrf_token": csrf_token(other, "/")})
    _post(
        admin_client,
        "/users/",
        username="newbie",
        role="operator",
        password="newbie-password",
        confirm="newbie-password",
    )
    newbie_id = _user_id(app, "newbie")
    _post(admin_client, f"/users/{newbie_id}/role", role="admin")
    _post(
        admin_client,
        f"/users/{newbie_id}/password",
        password="other-password",
        confirm="other-password",
    )
    _post(admin_client, f"/users/{newbie_id}/remove")

    doc = page(admin_client.get("/users/audit"))
    # cells: when, actor, action, target, detail, address
    rows = [(row["data-action"], row.cells()) for row in doc.rows(data_action=True)]
    actions = [action for action, _ in rows]
    for action in (
        "login",
        "login.failed",
        "logout",
        "user.create",
        "user.role",
        "user.reset_password",
        "user.delete",
    ):
        assert action in actions, action
    assert actions.index("user.delete") < actions.index("user.create")  # newest first
    assert all(cells[2] == action for action, cells in rows)
    from_web = [(action, cells) for action, cells in rows if cells[1] != "test"]
    assert len(from_web) >= 8
    for action, cells in from_web:
        assert cells[5] == "127.0.0.1", action
    assert "user:newbie" in [cells[3] for _, cells in rows]
    assert any("operator -> admin" in cells[4] for _, cells in rows)


def test_audit_filter(app, admin_client):
    doc = page(admin_client.get("/users/audit", query_string={"q": "action = logout"}))
    assert not doc.rows(data_action="login")
    doc = page(
        admin_client.get("/users/audit", query_string={"q": "actor = admin AND action = login"})
    )
    [row] = doc.rows(data_action="login")
    assert row.cells()[5] == "127.0.0.1"


def test_audit_filter_error_inline(admin_client):
    response = admin_client.get("/users/audit", query_string={"q": "password = x"})
    assert response.status_code == 200
    search = page(response).one("form", role="search")
    assert "unknown column" in search.by_id("filter-error").text
    assert "is-invalid" in search.field("q").classes


def test_admin_sees_audit_of_admin_login(admin_client):
    html = admin_client.get("/users/audit").get_data(as_text=True)
    assert ADMIN_PASSWORD not in html  # a secret appears nowhere in the markup


def test_the_command_line_keeps_the_password_rule(app, monkeypatch):
    def flask(*args, **kwargs):  # as the real flask command does, in an app context
        with app.app_context():
            return app.test_cli_runner().invoke(args=list(args), **kwargs)

    message = "password must be 8 to 256 characters long"
    result = flask("user", "create", "eve", input="p" * 257 + "\n")
    assert result.exit_code == 1 and message in result.output
    result = flask("user", "password", "oper", input="p" * 257 + "\n")
    assert result.exit_code == 1 and message in result.output
    with app.app_context():
        get_db().execute("DELETE FROM users")  # ensure-admin acts only on an empty table
    monkeypatch.setenv("NUBE_ADMIN_PASSWORD", "p" * 257)
    result = flask("nube", "ensure-admin")
    assert result.exit_code == 1 and f"NUBE_ADMIN_PASSWORD: {message}" in result.output
    assert _all_users(app) == []
