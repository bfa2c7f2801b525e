"""Login throttling (issue 9, finding 4): failures counted per account and address before
they are checked, one user's typos or a stranger's guesses lock out no one else, a name in
another case is the same account, and a password change's current password is throttled too."""

import threading

import pytest

from app.db import get_db
from tests.conftest import ADMIN_PASSWORD, OPERATOR_PASSWORD, csrf_token, login
from tests.wait import join_all


@pytest.fixture
def config_overrides():
    return {"LOGIN_RATE_LIMIT": 3}


def _client(app, address):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _try(client, username, password):
    return login(client, username, password).status_code


def test_logging_into_ones_own_account_clears_no_one_elses_failures(app):
    client = _client(app, "10.9.0.1")
    assert [_try(client, "admin", "guess-1"), _try(client, "admin", "guess-2")] == [401, 401]
    assert _try(_client(app, "10.9.0.1"), "oper", OPERATOR_PASSWORD) == 302
    assert _try(client, "admin", "guess-3") == 401
    assert _try(client, "admin", ADMIN_PASSWORD) == 429  # the right one too: still throttled


def test_parallel_guesses_are_counted_before_they_are_checked(app):
    results, barrier = [], threading.Barrier(8, timeout=30)

    def guess(n):
        client = _client(app, "10.9.0.2")
        token = csrf_token(client, "/login")
        barrier.wait()
        response = client.post(
            "/login", data={"username": "admin", "password": f"g{n}", "csrf_token": token}
        )
        results.append(response.status_code)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    join_all(threads, timeout=60, message="the parallel login guesses")
    assert sorted(results) == [401] * 3 + [429] * 5
    with app.app_context():
        failed = (
            get_db()
            .execute("SELECT COUNT(*) FROM audit WHERE action = 'login.failed'")
            .fetchone()[0]
        )
        throttled = (
            get_db()
            .execute("SELECT COUNT(*) FROM audit WHERE action = 'login.throttled'")
            .fetchone()[0]
        )
    assert (failed, throttled) == (3, 5)


def test_one_users_typos_lock_out_no_one_else_behind_the_same_address(app):
    tunnel = _client(app, "127.0.0.1")
    for n in range(3):
        assert _try(tunnel, "oper", f"typo-{n}") == 401
    assert _try(tunnel, "oper", "typo-4") == 429
    assert _try(_client(app, "127.0.0.1"), "admin", ADMIN_PASSWORD) == 302


def test_guessing_from_many_addresses_never_locks_out_the_owner_at_home(app):
    assert _try(_client(app, "10.8.0.1"), "admin", ADMIN_PASSWORD) == 302  # home, known
    for n in range(12):  # 4 x the limit, from addresses that each stay under it
        assert _try(_client(app, f"10.7.0.{n}"), "admin", f"guess-{n}") == 401
    assert _try(_client(app, "10.7.1.1"), "admin", "guess-x") == 429  # a new address waits
    assert _try(_client(app, "10.8.0.1"), "admin", ADMIN_PASSWORD) == 302  # the owner does not


# Found by the second review.


def test_a_user_name_in_another_case_is_the_same_account_for_throttling(app):
    client = _client(app, "10.9.0.3")
    assert [_try(client, name, "guess") for name in ("admin", "Admin", "ADMIN")] == [401] * 3
    assert _try(client, "aDmin", ADMIN_PASSWORD) == 429


def test_the_current_password_of_a_password_change_is_throttled(app, admin_client):
    def change(current):
        token = csrf_token(admin_client, "/account/password")
        admin_client.post(
            "/account/password",
            data={"current": current, "new": "x" * 12, "confirm": "x" * 12, "csrf_token": token},
        )

    for n in range(3):
        change(f"wrong-{n}")
    change(ADMIN_PASSWORD)  # refused now: throttled
    with app.app_context():
        actions = [r[0] for r in get_db().execute("SELECT action FROM audit").fetchall()]
    assert actions.count("user.password.failed") == 3
    assert "user.password.throttled" in actions and "user.password" not in actions
