"""Sessions (issue 9, finding 5): a session ends on logout, on a password change or reset and
on the user's removal, for every copy of its cookie and for the console proxy too."""

from app.console.proxy import session_user_id
from app.db import get_db
from tests.conftest import ADMIN_PASSWORD, csrf_token, login


def _session_cookie(client):
    return client.get_cookie("session").value


def _with_cookie(app, value):
    client = app.test_client()
    client.set_cookie("session", value)
    return client


def test_a_copied_session_cookie_dies_with_logout(app, admin_client):
    stolen = _session_cookie(admin_client)
    assert _with_cookie(app, stolen).get("/hosts/").status_code == 200
    assert session_user_id(app, f"session={stolen}") is not None
    token = csrf_token(admin_client, "/")
    admin_client.post("/logout", data={"csrf_token": token})
    assert _with_cookie(app, stolen).get("/hosts/").status_code == 302
    assert session_user_id(app, f"session={stolen}") is None  # the console proxy agrees


def test_an_admin_password_reset_ends_the_users_sessions(app, admin_client, operator_client):
    stolen = _session_cookie(operator_client)
    with app.app_context():
        oper_id = get_db().execute("SELECT id FROM users WHERE username = 'oper'").fetchone()[0]
    token = csrf_token(admin_client, "/users/")
    response = admin_client.post(
        f"/users/{oper_id}/password",
        data={"password": "brand-new-pw-1", "confirm": "brand-new-pw-1", "csrf_token": token},
    )
    assert response.status_code == 302
    assert _with_cookie(app, stolen).get("/hosts/").status_code == 302
    assert operator_client.get("/hosts/").status_code == 302


def _user_sessions(app, username):
    """The token hashes of a user's live server-side sessions."""
    with app.app_context():
        rows = (
            get_db()
            .execute(
                "SELECT s.token_hash FROM user_sessions s JOIN users u ON u.id = s.user_id"
                " WHERE u.username = ?",
                (username,),
            )
            .fetchall()
        )
    return {row[0] for row in rows}


def test_changing_ones_password_ends_every_session_and_issues_a_new_one(app, admin_client):
    other = app.test_client()
    assert login(other, "admin", ADMIN_PASSWORD).status_code == 302
    old_cookie = _session_cookie(admin_client)
    copy = _with_cookie(app, old_cookie)  # a thief's copy of the very cookie that changes it
    assert copy.get("/hosts/").status_code == 200
    before = _user_sessions(app, "admin")
    token = csrf_token(admin_client, "/account/password")
    response = admin_client.post(
        "/account/password",
        data={
            "current": ADMIN_PASSWORD,
            "new": "another-password-1",
            "confirm": "another-password-1",
            "csrf_token": token,
        },
    )
    assert response.status_code == 302
    assert admin_client.get("/hosts/").status_code == 200  # the tab that changed it stays in
    assert _session_cookie(admin_client) != old_cookie
    after = _user_sessions(app, "admin")
    assert len(after) == 1 and not after & before  # one session, and a new one
    assert copy.get("/hosts/").status_code == 302  # the copied cookie is out
    assert other.get("/hosts/").status_code == 302  # and every other session
    assert session_user_id(app, f"session={old_cookie}") is None  # the console proxy agrees


def test_a_removed_users_session_ends(app, admin_client, operator_client):
    with app.app_context():
        oper_id = get_db().execute("SELECT id FROM users WHERE username = 'oper'").fetchone()[0]
    token = csrf_token(admin_client, "/users/")
    assert (
        admin_client.post(f"/users/{oper_id}/remove", data={"csrf_token": token}).status_code == 302
    )
    with app.app_context():
        assert (
            get_db().execute("SELECT COUNT(*) FROM users WHERE id = ?", (oper_id,)).fetchone()[0]
            == 0
        )
    assert operator_client.get("/hosts/").status_code == 302
