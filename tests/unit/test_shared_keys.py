"""Several controllers on one database (issue 13): with CLUSTER_KEY they share the session
key, the host passwords' key, the SSH key pair and the recorded host keys; each keeps them in
its own instance folder too, where ssh, Ansible and libvirt read them."""

import pytest
from cryptography.fernet import Fernet

from app import create_app
from app.config import ConfigError
from app.db import get_db
from app.repositories import controller_secrets as secrets_repo
from app.repositories import hosts as hosts_repo
from app.services import host_secrets, shared_keys
from tests.conftest import ADMIN_PASSWORD, login
from tests.factories import gen_host

KEY = Fernet.generate_key().decode()


CREATED = []  # apps a test made: their libvirt connections are closed after it


@pytest.fixture(autouse=True)
def _close_controllers():
    """Close the test driver's connections of every app a test made (while one stays open,
    libvirt's test:///default keeps its domains for the next test)."""
    yield
    while CREATED:
        CREATED.pop().extensions["nube"].hypervisor.close()


def controller(tmp_path, database, name, **settings):
    """A controller app with its own instance folder on the shared database."""
    repository = tmp_path / "iaas"
    (repository / "images").mkdir(parents=True, exist_ok=True)
    (repository / "vms").mkdir(exist_ok=True)
    application = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(tmp_path / name),
            "DATABASE": database,
            "REPOSITORY": str(repository),
            "LIBVIRT_URI": "test:///default",
            "PROVISIONER": "recording",
            "QUEUE": "immediate",
            "CLUSTER_KEY": KEY,
            "LOGIN_RATE_LIMIT": 1000,
            **settings,
        }
    )
    CREATED.append(application)
    return application


@pytest.fixture
def pair(app, tmp_path, database):
    """Two controllers (a and b) on the database of the `app` fixture (which has the users)."""
    return controller(tmp_path, database, "a"), controller(tmp_path, database, "b")


def test_two_controllers_share_every_key(pair):
    a, b = pair
    assert a.config["SECRET_KEY"] == b.config["SECRET_KEY"] and len(a.config["SECRET_KEY"]) == 64
    nube_a, nube_b = a.extensions["nube"], b.extensions["nube"]
    assert nube_a.public_key() == nube_b.public_key()
    assert nube_a.ssh_key.read_text() == nube_b.ssh_key.read_text()
    assert nube_b.ssh_key.stat().st_mode & 0o777 == 0o600
    secret = nube_a.secrets.encrypt("sudo-password")
    assert nube_b.secrets.decrypt(secret) == "sudo-password"


def test_a_login_on_one_controller_works_on_the_other(pair):
    a, b = pair
    client = a.test_client()
    assert login(client, "admin", ADMIN_PASSWORD).status_code == 302
    cookie = client.get_cookie("session")
    other = b.test_client()
    other.set_cookie("session", cookie.value)
    assert other.get("/").status_code == 200  # not a redirect to the login page


def test_the_first_controller_shares_the_keys_it_already_had(tmp_path, database, app):
    instance = tmp_path / "old"
    instance.mkdir(mode=0o700)
    own_fernet = Fernet.generate_key()
    (instance / "fernet.key").write_bytes(own_fernet)
    (instance / "secret_key").write_text("an-old-secret-key")
    old = controller(tmp_path, database, "old")
    assert old.config["SECRET_KEY"] == "an-old-secret-key"
    stored_before = Fernet(own_fernet).encrypt(b"kept").decode()
    joined = controller(tmp_path, database, "new")
    assert joined.extensions["nube"].secrets.decrypt(stored_before) == "kept"


def test_another_cluster_key_is_refused_at_start_up(pair, tmp_path, database):
    with pytest.raises(ConfigError, match="CLUSTER_KEY cannot decrypt the shared"):
        controller(tmp_path, database, "c", CLUSTER_KEY=Fernet.generate_key().decode())


def test_a_malformed_cluster_key_is_refused(tmp_path, database):
    with pytest.raises(ConfigError, match="CLUSTER_KEY must be a Fernet key"):
        controller(tmp_path, database, "c", CLUSTER_KEY="not-a-key")


def test_without_a_cluster_key_nothing_is_shared(app):
    with app.app_context():
        assert secrets_repo.names(get_db()) == []
    assert (app.extensions["nube"].instance / "fernet.key").exists() is False  # not yet used


def test_known_hosts_follow_the_hosts_table(pair):
    a, b = pair
    gen_host(a, name="h1", address="127.0.0.1")
    gen_host(a, name="h2", address="127.0.0.2")
    known = b.extensions["nube"].known_hosts_file
    known.path.parent.mkdir(parents=True, exist_ok=True)
    known.path.write_text("127.0.0.2 ssh-ed25519 AAAAbeing-added\n127.0.0.9 ssh-ed25519 AAAAgone\n")
    with a.app_context():
        conn = get_db()
        keys = "ssh-ed25519 AAAAone; ecdsa-sha2-nistp256 AAAAtwo"
        host_secrets.record_host_key(conn, a.extensions["nube"].secrets, 1, "127.0.0.1", keys)
    with b.app_context():
        shared_keys.sync_known_hosts(b, get_db())
    assert known.path.read_text() == (
        "127.0.0.1 ssh-ed25519 AAAAone\n"
        "127.0.0.1 ecdsa-sha2-nistp256 AAAAtwo\n"
        "127.0.0.2 ssh-ed25519 AAAAbeing-added\n"  # its add is under way: the file's lines stay
    )  # 127.0.0.9 is no host any more: dropped
    assert known.path.stat().st_mode & 0o777 == 0o600


def test_a_controller_without_the_cluster_key_is_refused_on_a_shared_database(
    pair, tmp_path, database
):
    with pytest.raises(ConfigError, match="give this one their CLUSTER_KEY"):
        controller(tmp_path, database, "c", CLUSTER_KEY=None, SECRET_KEY="x")


def test_a_new_controller_never_makes_a_new_password_key_over_stored_passwords(
    app, tmp_path, database
):
    with app.app_context():
        gen_host(app, name="h1", address="127.0.0.1")
        hosts_repo.set_secret(get_db(), 1, "gAAAA-encrypted-elsewhere", "127.0.0.1")
    with pytest.raises(ConfigError, match="start the controller that has instance/fernet.key"):
        controller(tmp_path, database, "new")


def test_joining_keeps_the_controllers_own_ssh_key_aside(pair, tmp_path, database):
    own = tmp_path / "c" / "ssh" / "id_ed25519"
    own.parent.mkdir(parents=True)
    own.write_text("its own private key\n")
    joined = controller(tmp_path, database, "c")
    assert own.read_text() == pair[0].extensions["nube"].ssh_key.read_text()
    assert (own.parent / "id_ed25519.before-cluster").read_text() == "its own private key\n"
    assert joined.extensions["nube"].ssh_key == own


def test_known_hosts_never_take_a_pattern_a_marker_or_a_second_line(pair):
    a, b = pair
    gen_host(a, name="h1", address="127.0.0.1")
    with a.app_context():
        host_secrets.record_host_key(
            get_db(),
            a.extensions["nube"].secrets,
            1,
            "127.0.0.1",
            "ssh-ed25519 AAAAgood; ssh-ed25519 AAAA\n@cert-authority * ssh-ed25519 AAAAx",
        )
    with b.app_context():
        shared_keys.sync_known_hosts(b, get_db())
    assert b.extensions["nube"].known_hosts_file.path.read_text() == (
        "127.0.0.1 ssh-ed25519 AAAAgood\n"
    )


def plant(conn, host_id, keys, mac=None, address=None):
    """Write a host's keys the way a database writer would: SQL, no controller's key."""
    conn.execute(
        "UPDATE hosts SET host_key = ?, host_key_mac = ?, address = COALESCE(?, address)"
        " WHERE id = ?",
        (keys, mac, address, host_id),
    )


def test_a_host_key_planted_in_the_database_is_not_trusted(pair, caplog):
    a, b = pair
    gen_host(a, name="h1", address="127.0.0.1")
    gen_host(a, name="h2", address="127.0.0.2")
    known = b.extensions["nube"].known_hosts_file
    with a.app_context():
        conn = get_db()
        box = a.extensions["nube"].secrets
        host_secrets.record_host_key(conn, box, 1, "127.0.0.1", "ssh-ed25519 AAAAreal")
        good_mac = conn.execute("SELECT host_key_mac FROM hosts WHERE id = 1").fetchone()[0]
    with b.app_context():
        shared_keys.sync_known_hosts(b, get_db())
    assert known.path.read_text() == "127.0.0.1 ssh-ed25519 AAAAreal\n"
    with a.app_context():
        conn = get_db()
        plant(conn, 1, "ssh-ed25519 AAAAplanted")  # no MAC
        plant(conn, 2, "ssh-ed25519 AAAAplanted", good_mac)  # another row's MAC
    with b.app_context():
        shared_keys.sync_known_hosts(b, get_db())
    # the planted keys are ignored: the file keeps the key a controller recorded
    assert known.path.read_text() == "127.0.0.1 ssh-ed25519 AAAAreal\n"
    assert "AAAAplanted" not in known.path.read_text()
    named = [r.getMessage() for r in caplog.records if "no valid MAC" in r.getMessage()]
    assert any("127.0.0.1" in m for m in named) and any("127.0.0.2" in m for m in named)


def test_a_recorded_key_moved_to_another_address_is_not_trusted(pair):
    a, b = pair
    gen_host(a, name="h1", address="127.0.0.1")
    with a.app_context():
        conn = get_db()
        box = a.extensions["nube"].secrets
        host_secrets.record_host_key(conn, box, 1, "127.0.0.1", "ssh-ed25519 AAAAreal")
        plant(
            conn,
            1,
            "ssh-ed25519 AAAAreal",
            conn.execute("SELECT host_key_mac FROM hosts").fetchone()[0],
            address="127.0.0.66",
        )
    with b.app_context():
        shared_keys.sync_known_hosts(b, get_db())
    known = b.extensions["nube"].known_hosts_file.path
    assert "127.0.0.66" not in (known.read_text() if known.exists() else "")


def test_keys_recorded_before_the_mac_are_vouched_for_only_by_a_controller_that_has_them(
    pair, tmp_path, database
):
    a, b = pair
    gen_host(a, name="h1", address="127.0.0.1")
    gen_host(a, name="h2", address="127.0.0.2")
    with a.app_context():
        conn = get_db()
        plant(conn, 1, "ssh-ed25519 AAAAold")  # an older Nube's rows: no MAC
        plant(conn, 2, "ssh-ed25519 AAAAnot-in-its-file")
    own = tmp_path / "c" / "ssh" / "known_hosts"
    own.parent.mkdir(parents=True)
    own.write_text("127.0.0.1 ssh-ed25519 AAAAold\n127.0.0.2 ssh-ed25519 AAAAother\n")
    upgraded = controller(tmp_path, database, "c")  # its start-up vouches for its own keys
    with upgraded.app_context():
        rows = {row[0]: row for row in hosts_repo.recorded_keys(get_db())}
    box = upgraded.extensions["nube"].secrets
    assert host_secrets.key_verifies(box, 1, "127.0.0.1", "ssh-ed25519 AAAAold", rows[1][3])
    assert rows[2][3] is None  # not what its file trusts: left unverified
    assert own.read_text() == "127.0.0.1 ssh-ed25519 AAAAold\n127.0.0.2 ssh-ed25519 AAAAother\n"
