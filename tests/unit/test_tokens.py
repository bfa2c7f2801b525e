"""API tokens: the service (create, authenticate, expiry, revoke, who sees what) and the
dashboard's API tokens page."""

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from app.db import get_db
from app.errors import Conflict, InvalidInput, NotFound, TokenRefused
from app.repositories import users as users_repo
from app.services import audit as audit_service
from app.services import tokens, users
from tests.conftest import ADMIN_PASSWORD, OPERATOR_PASSWORD, csrf_token
from tests.html import page

PUBLIC = {
    "id",
    "name",
    "user_id",
    "username",
    "prefix",
    "created_at",
    "expires_at",
    "last_used_at",
    "revoked_at",
    "state",
}


def _today():
    """Today's date in UTC, the calendar tokens expire by."""
    return datetime.now(UTC).date()


def _user(name):
    """A User by name, as the services take it."""
    return users.User(users_repo.by_username(get_db(), name))


def _rows():
    """Every api_tokens row, hash included (what is on disk)."""
    return [dict(r) for r in get_db().execute("SELECT * FROM api_tokens ORDER BY id")]


def _audit(action):
    """(target, detail) of the audit records of one action."""
    return [
        (r["target"], r["detail"])
        for r in get_db().execute("SELECT target, detail FROM audit WHERE action = ?", (action,))
    ]


def _set(token_id, **columns):
    """Change a token's columns behind the service's back (times in tests)."""
    for column, value in columns.items():
        get_db().execute(f"UPDATE api_tokens SET {column} = ? WHERE id = ?", (value, token_id))


# ---------------------------------------------------------------- service


def test_create_returns_the_secret_once_and_stores_its_hash(ctx):
    token, raw = tokens.create(_user("oper"), "  laptop  ", None, "oper")
    assert raw.startswith("nube_") and len(raw) == 48
    assert set(token) == PUBLIC
    assert token["name"] == "laptop" and token["username"] == "oper"
    assert token["prefix"] == raw[:12] and token["state"] == "active"
    assert token["expires_at"] is None and token["last_used_at"] is None
    [row] = _rows()
    assert row["token_hash"] == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in repr(row) and raw not in repr(_audit("token.create"))
    assert _audit("token.create") == [(f"token:{token['id']}", "laptop")]
    other, second = tokens.create(_user("oper"), "laptop", None, "oper")
    assert second != raw and other["id"] != token["id"]  # names may repeat, secrets never


def test_authenticate_gives_the_user_as_it_is_now(ctx):
    token, raw = tokens.create(_user("oper"), "ci", None, "oper")
    user, seen = tokens.authenticate(raw)
    assert (user.username, user.role, user.is_admin) == ("oper", "operator", False)
    assert user.session_token is None and seen["id"] == token["id"]
    users_repo.set_role(get_db(), user.id, "admin")
    user, _ = tokens.authenticate(raw)
    assert user.is_admin  # the role at the time of the request, not at creation


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "nube_",
        "nube_short",
        "Bearer nube_" + "a" * 43,
        "nube_" + "!" * 43,
        "nube_" + "a" * 44,
        "nube_" + "a" * 100_000,
        "nube_" + "a" * 43,  # well formed, unknown
    ],
)
def test_authenticate_refuses_bad_tokens(ctx, raw):
    tokens.create(_user("oper"), "ci", None, "oper")
    with pytest.raises(TokenRefused, match="^the token is not valid$"):
        tokens.authenticate(raw)


def test_expiry_is_the_end_of_the_day_utc(ctx):
    day = _today() + timedelta(days=3)
    token, raw = tokens.create(_user("oper"), "ci", day, "oper")
    assert token["expires_at"] == f"{day.isoformat()}T23:59:59.999999Z"
    same, _ = tokens.create(_user("oper"), "ci", f" {day.isoformat()} ", "oper")
    assert same["expires_at"] == token["expires_at"]
    today, _ = tokens.create(_user("oper"), "today", _today(), "oper")
    assert today["state"] == "active"  # it lasts until midnight UTC
    assert tokens.authenticate(raw)[1]["state"] == "active"
    _set(token["id"], expires_at="2001-01-01T23:59:59.999999Z")
    with pytest.raises(TokenRefused, match="^the token has expired$"):
        tokens.authenticate(raw)
    [listed] = [t for t in tokens.page(_user("oper"))[0] if t["id"] == token["id"]]
    assert listed["state"] == "expired"


def test_expiry_at_most_five_years_ahead(ctx):
    today = _today()
    furthest = today.replace(year=today.year + 5, day=min(today.day, 28))
    token, _ = tokens.create(_user("oper"), "long", furthest, "oper")
    assert token["expires_at"].startswith(furthest.isoformat())
    with pytest.raises(InvalidInput, match="at most 5 years"):
        tokens.create(_user("oper"), "longer", furthest + timedelta(days=366), "oper")


@pytest.mark.parametrize(
    "name, expires_at, message",
    [
        ("", None, "needs a name"),
        ("   ", None, "needs a name"),
        (None, None, "must be text"),
        (42, None, "must be text"),
        ("x" * 65, None, "at most 64"),
        ("two\nlines", None, "printable"),
        ("tab\there", None, "printable"),
        ("ci", "2001-01-01", "in the past"),
        ("ci", "tomorrow", "YYYY-MM-DD"),
        ("ci", "2030-02-30", "not a real date"),
        ("ci", "20300101", "YYYY-MM-DD"),
        ("ci", datetime.now(UTC), "YYYY-MM-DD"),
        ("ci", 20300101, "YYYY-MM-DD"),
    ],
)
def test_bad_input_changes_nothing(ctx, name, expires_at, message):
    with pytest.raises(InvalidInput, match=message):
        tokens.create(_user("oper"), name, expires_at, "oper")
    assert _rows() == [] and _audit("token.create") == []


def test_revoke_ends_a_token_once(ctx):
    token, raw = tokens.create(_user("oper"), "ci", None, "oper")
    revoked = tokens.revoke(token["id"], _user("oper"))
    assert revoked["state"] == "revoked" and revoked["revoked_at"]
    assert _rows()[0]["revoked_by"] == "oper"
    assert _audit("token.revoke") == [(f"token:{token['id']}", "ci")]
    with pytest.raises(TokenRefused, match="^the token was revoked$"):
        tokens.authenticate(raw)
    with pytest.raises(Conflict, match="already revoked"):
        tokens.revoke(str(token["id"]), _user("oper"))
    assert len(_audit("token.revoke")) == 1


def test_admins_see_and_revoke_everyones_operators_their_own(ctx):
    admin, oper = _user("admin"), _user("oper")
    mine, _ = tokens.create(admin, "admin-ci", None, "admin")
    theirs, _ = tokens.create(oper, "oper-ci", None, "oper")
    items, total = tokens.page(admin)
    assert total == 2 and [(t["name"], t["username"]) for t in items] == [
        ("oper-ci", "oper"),
        ("admin-ci", "admin"),
    ]
    assert [t["name"] for t in tokens.page(admin, "username = oper")[0]] == ["oper-ci"]
    assert [t["name"] for t in tokens.page(oper)[0]] == ["oper-ci"]
    # a filter cannot widen the operator's view: it is ANDed with their own tokens
    seen, total = tokens.page(oper, "username = admin OR name = 'admin-ci'")
    assert (seen, total) == ([], 0)
    with pytest.raises(NotFound, match=f"token {mine['id']} not found"):
        tokens.revoke(mine["id"], oper)  # not 403: the id reveals nothing
    assert tokens.page(admin, f"id = {mine['id']}")[0][0]["state"] == "active"
    assert tokens.revoke(theirs["id"], admin)["state"] == "revoked"
    assert _rows()[1]["revoked_by"] == "admin"


@pytest.mark.parametrize("token_id", [999, "999", "abc", "", None, True, -1, 2**70, "9" * 40])
def test_revoke_unknown_ids(ctx, token_id):
    with pytest.raises(NotFound):
        tokens.revoke(token_id, _user("admin"))


def test_bad_filter_refused(ctx):
    with pytest.raises(InvalidInput, match="unknown column"):
        tokens.page(_user("admin"), "token_hash = 'x'")


def test_removing_a_user_removes_their_tokens(ctx):
    _, raw = tokens.create(_user("oper"), "ci", None, "oper")
    tokens.create(_user("admin"), "ci", None, "admin")
    users.delete(_user("oper").id, _user("admin"))
    assert [r["user_id"] for r in _rows()] == [_user("admin").id]
    with pytest.raises(TokenRefused, match="^the token is not valid$"):
        tokens.authenticate(raw)


def test_last_use_written_at_most_once_a_minute(ctx):
    token, raw = tokens.create(_user("oper"), "ci", None, "oper")
    _, seen = tokens.authenticate(raw)
    first = _rows()[0]["last_used_at"]
    assert first and seen["last_used_at"] == first
    tokens.authenticate(raw)
    assert _rows()[0]["last_used_at"] == first  # within the minute: not written again
    old = (datetime.now(UTC) - timedelta(seconds=61)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    _set(token["id"], last_used_at=old)
    tokens.authenticate(raw)
    assert _rows()[0]["last_used_at"] > first


# ---------------------------------------------------------------- pages


def _create(client, password, **data):
    """POST the create form with a valid CSRF token and the user's password (no redirect)."""
    data = {
        "expiry": "never",
        "password": password,
        "csrf_token": csrf_token(client, "/tokens/"),
        **data,
    }
    return client.post("/tokens/", data=data)


def _revoke(client, token_id, **data):
    """POST a revoke form with a valid CSRF token, following the redirect."""
    data = {"csrf_token": csrf_token(client, "/tokens/"), **data}
    return client.post(f"/tokens/{token_id}/revoke", data=data, follow_redirects=True)


def _state(app, token_id):
    """A token's state, as an admin sees it."""
    with app.app_context():
        [token] = tokens.page(_user("admin"), f"id = {token_id}")[0]
        return token["state"]


def test_create_page_shows_the_token_once(app, operator_client):
    response = _create(operator_client, OPERATOR_PASSWORD, name="laptop")
    assert response.status_code == 200  # rendered, not redirected: no secret in the session
    assert response.headers["Cache-Control"] == "no-store"
    doc = page(response)
    field = doc.by_id("new-token")
    raw = field["value"]
    assert raw.startswith("nube_") and field.has("readonly")
    assert doc.by_id("new-token-note").text == "Copy it now: it will not be shown again."
    assert doc.by_id("copy-token")["data-copy"] == "new-token"  # nube.js copies that field
    with operator_client.session_transaction() as session:
        assert raw not in repr(dict(session))
    with app.app_context():
        user, token = tokens.authenticate(raw)
    assert user.username == "oper" and token["name"] == "laptop"
    again = operator_client.get("/tokens/")
    assert again.headers["Cache-Control"] == "no-store"
    assert raw not in again.get_data(as_text=True)
    row = page(again).one("tr", data_token_id=str(token["id"]))
    assert raw[:12] in row.text and "active" in row.text


def test_create_page_expiry_choice_and_exact_date(app, operator_client):
    _create(operator_client, OPERATOR_PASSWORD, name="month", expiry="30")
    exact = _today() + timedelta(days=5)
    _create(
        operator_client, OPERATOR_PASSWORD, name="exact", expiry="365", expires_on=exact.isoformat()
    )
    with app.app_context():
        found = {t["name"]: t["expires_at"] for t in tokens.page(_user("oper"))[0]}
    assert found["month"].startswith((_today() + timedelta(days=30)).isoformat())
    assert found["exact"].startswith(exact.isoformat())  # the exact date wins


def test_create_page_refuses_bad_input(app, operator_client):
    doc = page(_create(operator_client, OPERATOR_PASSWORD, name="old", expires_on="2001-01-01"))
    assert doc.alert("in the past", "danger")
    assert not doc.has_element(id="new-token")
    doc = page(_create(operator_client, OPERATOR_PASSWORD, name=""))
    assert doc.field_errors() and not doc.has_element(id="new-token")
    with app.app_context():
        assert _rows() == []


def test_list_pages_for_admins_and_operators(app, admin_client, operator_client):
    _create(admin_client, ADMIN_PASSWORD, name="admin-ci")
    _create(operator_client, OPERATOR_PASSWORD, name="oper-ci")
    admin_doc = page(admin_client.get("/tokens/"))
    table = admin_doc.by_id("tokens-table")
    assert "User" in [th.text for th in table.find_all("th")]
    assert sorted(r.cells()[0] for r in table.rows(data_token_id=True)) == ["admin-ci", "oper-ci"]
    oper_doc = page(operator_client.get("/tokens/"))
    table = oper_doc.by_id("tokens-table")
    assert "User" not in [th.text for th in table.find_all("th")]
    assert [r.cells()[0] for r in table.rows(data_token_id=True)] == ["oper-ci"]
    assert oper_doc.link("/tokens/").text == "API tokens"  # in every user's nav
    filtered = page(admin_client.get("/tokens/?q=username+%3D+oper"))
    assert [r.cells()[0] for r in filtered.rows(data_token_id=True)] == ["oper-ci"]
    bad = page(admin_client.get("/tokens/?q=secret+%3D+1"))
    assert "unknown column" in bad.by_id("filter-error").text


def test_revoke_page_needs_the_box_ticked(app, operator_client):
    _create(operator_client, OPERATOR_PASSWORD, name="ci")
    with app.app_context():
        [token] = tokens.page(_user("oper"))[0]
    doc = page(_revoke(operator_client, token["id"]))
    assert doc.alert("Tick the box", "warning") and _state(app, token["id"]) == "active"
    doc = page(_revoke(operator_client, token["id"], confirm="y"))
    assert doc.alert(f"Token ci ({token['prefix']}…) revoked.", "success")
    assert _state(app, token["id"]) == "revoked"
    row = doc.one("tr", data_token_id=str(token["id"]))
    assert row["data-state"] == "revoked" and not row.forms()
    doc = page(_revoke(operator_client, token["id"], confirm="y"))
    assert doc.alert("already revoked", "danger")


def test_operator_cannot_see_or_revoke_an_admins_token(app, admin_client, operator_client):
    _create(admin_client, ADMIN_PASSWORD, name="admin-ci")
    with app.app_context():
        [token] = tokens.page(_user("admin"))[0]
    assert page(operator_client.get("/tokens/")).has_element(id="empty-state")
    response = _revoke(operator_client, token["id"], confirm="y")
    assert response.status_code == 404
    assert _state(app, token["id"]) == "active"
    doc = page(_revoke(admin_client, token["id"], confirm="y"))
    assert doc.alert("revoked.", "success") and _state(app, token["id"]) == "revoked"


def test_forms_need_the_csrf_token(app, admin_client):
    response = admin_client.post("/tokens/", data={"name": "sneaky", "expiry": "never"})
    assert response.status_code == 400 and "new-token" not in response.get_data(as_text=True)
    _create(admin_client, ADMIN_PASSWORD, name="ci")
    with app.app_context():
        [token] = tokens.page(_user("admin"))[0]
    response = admin_client.post(f"/tokens/{token['id']}/revoke", data={"confirm": "y"})
    assert response.status_code == 400
    with app.app_context():
        assert [r["name"] for r in _rows()] == ["ci"]
    assert _state(app, token["id"]) == "active"


def test_creating_a_token_asks_for_the_password(app, operator_client):
    doc = page(_create(operator_client, "not-my-password", name="stolen-session"))
    doc.alert("current password is wrong", "danger")
    with app.app_context():
        assert tokens.page(users.get(2))[1] == 0
        records, _ = audit_service.page("action = 'token.create.failed'")
    assert records


def test_a_password_change_or_reset_revokes_the_users_tokens(app):
    with app.app_context():
        oper = users.get(2)
        first, raw = tokens.create(oper, "ci", None, "oper")
        users.reset_password(oper.id, "a-new-password-1", "admin")
        with pytest.raises(TokenRefused, match="revoked"):
            tokens.authenticate(raw)
        _, raw = tokens.create(oper, "ci2", None, "oper")
        users.change_password(oper.id, "a-new-password-1", "a-new-password-2", "oper")
        with pytest.raises(TokenRefused, match="revoked"):
            tokens.authenticate(raw)
        records, _ = audit_service.page("action = 'user.password'")
    assert records[0]["detail"] == "1 API token(s) revoked"


def test_an_admin_resets_only_other_peoples_passwords(app):
    with app.app_context():
        admin = users.get(1)
        with pytest.raises(Conflict, match="Change password"):
            users.reset_password(admin.id, "a-new-password-1", "admin")
