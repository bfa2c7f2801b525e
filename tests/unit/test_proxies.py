"""TRUSTED_PROXIES: behind a load balancer each client is throttled and audited as itself, and
without trusted proxies a forged X-Forwarded-For changes nothing."""

from email.message import Message
from types import SimpleNamespace

import pytest

from app.config import ConfigError, load_settings
from app.console.proxy import ConsoleHandler
from app.db import get_db
from app.proxies import client_address
from tests.conftest import ADMIN_PASSWORD, login

BALANCER = "10.0.0.1"  # every request arrives from the balancer's address


@pytest.fixture
def config_overrides(request):
    """Three failed logins per account and address; TRUSTED_PROXIES as the test asks (0)."""
    return {"LOGIN_RATE_LIMIT": 3, "TRUSTED_PROXIES": getattr(request, "param", 0)}


def _client(app, forwarded_for):
    """A test client behind the balancer, its requests carrying that X-Forwarded-For."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = BALANCER
    client.environ_base["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return client


def _audited(app, action):
    """The addresses the audit log recorded for an action, oldest first."""
    with app.app_context():
        rows = get_db().execute(
            "SELECT remote_addr FROM audit WHERE action = ? ORDER BY id", (action,)
        )
        return [row[0] for row in rows]


@pytest.mark.parametrize("config_overrides", [1], indirect=True)
def test_clients_behind_a_trusted_proxy_are_throttled_and_audited_apart(app):
    # the guesser writes its own X-Forwarded-For; the balancer appends the address it saw
    guesses = [f"10.66.0.{n}, 203.0.113.1" for n in range(4)]
    codes = [login(_client(app, forged), "admin", f"guess-{n}").status_code
             for n, forged in enumerate(guesses)]  # fmt: skip
    assert codes == [401, 401, 401, 429]  # its forged part bought it nothing
    assert login(_client(app, "203.0.113.2"), "admin", ADMIN_PASSWORD).status_code == 302
    assert _audited(app, "login.failed") == ["203.0.113.1"] * 3
    assert _audited(app, "login.throttled") == ["203.0.113.1"]
    assert _audited(app, "login") == ["203.0.113.2"]


def test_without_trusted_proxies_a_forged_x_forwarded_for_changes_nothing(app):
    codes = [login(_client(app, f"203.0.113.{n}"), "admin", f"guess-{n}").status_code
             for n in range(4)]  # fmt: skip
    assert codes == [401, 401, 401, 429]  # one address, however many the header names
    assert _audited(app, "login.failed") == [BALANCER] * 3
    assert _audited(app, "login.throttled") == [BALANCER]


@pytest.mark.parametrize("value", ["-1", "x", "1.5", ""])
def test_trusted_proxies_must_be_a_count(value, tmp_path):
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        load_settings(tmp_path, environ={"NUBE_TRUSTED_PROXIES": value, "NUBE_SECRET_KEY": "x"})


def test_trusted_proxies_is_read_from_the_environment(tmp_path):
    settings = load_settings(
        tmp_path, environ={"NUBE_TRUSTED_PROXIES": "2", "NUBE_SECRET_KEY": "x"}
    )
    assert settings["TRUSTED_PROXIES"] == 2


@pytest.mark.parametrize(
    ("forwarded", "trusted", "expected"),
    [
        ("203.0.113.1", 0, BALANCER),  # nothing believed
        ("6.6.6.6, 203.0.113.1", 1, "203.0.113.1"),  # the client's own value is ignored
        ("6.6.6.6, 203.0.113.1, 10.0.0.2", 2, "203.0.113.1"),  # two proxies in a row
        ("203.0.113.1", 2, BALANCER),  # fewer values than proxies: the header is not believed
        ("", 1, BALANCER),
    ],
)
def test_the_console_proxy_picks_the_client_address_as_the_dashboard_does(
    forwarded, trusted, expected
):
    assert client_address(BALANCER, forwarded, trusted) == expected


@pytest.mark.parametrize(("trusted", "expected"), [(0, BALANCER), (1, "203.0.113.1")])
def test_the_console_proxy_redeems_links_with_the_clients_address(app, trusted, expected):
    seen = []
    app.config["TRUSTED_PROXIES"] = trusted
    headers = Message()
    headers["X-Forwarded-For"] = "6.6.6.6, 203.0.113.1"
    plugin = SimpleNamespace(lookup=lambda token, **kw: seen.append(kw["remote_addr"]))
    handler = SimpleNamespace(
        path="/?token=t",
        headers=headers,
        client_address=(BALANCER, 40000),
        server=SimpleNamespace(app=app, token_plugin=plugin),
    )
    ConsoleHandler.validate_connection(handler)
    assert seen == [expected]  # the address its redemption and opening are audited with


def test_a_copied_cookie_cannot_claim_its_owners_address_with_the_header(app):
    owner = app.test_client()
    owner.environ_base["REMOTE_ADDR"] = "127.0.0.5"
    login(owner, "admin", ADMIN_PASSWORD)
    assert owner.get("/").status_code == 200
    thief = app.test_client()
    thief.environ_base["REMOTE_ADDR"] = "127.0.0.9"
    thief.environ_base["HTTP_X_FORWARDED_FOR"] = "127.0.0.5"  # the owner's, written by the thief
    thief.set_cookie("session", owner.get_cookie("session").value)
    response = thief.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
