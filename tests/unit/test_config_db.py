"""Settings parsing and schema migrations from an empty file."""

import sqlite3

import pytest

from app import pg
from app.config import ConfigError, load_settings
from app.migrations import MIGRATIONS
from app.migrator import migrate
from app.migrator import version as migrator_version


def test_defaults_and_environment(tmp_path):
    settings = load_settings(
        tmp_path, environ={"NUBE_STOP_TIMEOUT": "5", "NUBE_CONTROLLER_PREPARE": "off"}
    )
    assert settings["REPOSITORY"] == "/export/iaas" and settings["HOST_MOUNT"] == "/mnt/iaas"
    assert settings["STOP_TIMEOUT"] == 5.0 and settings["CONTROLLER_PREPARE"] is False
    assert settings["DATABASE"] == str(tmp_path / "nube.sqlite")
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert load_settings(tmp_path, environ={})["SECRET_KEY"] == settings["SECRET_KEY"]


@pytest.mark.parametrize(
    "key, value",
    [
        ("CONTROLLER_PREPARE", "maybe"),
        ("DISK_MODE", "thin"),
        ("WORKERS", "four"),
        ("QUEUE", "rabbit"),
        ("PLACEMENT", "random"),
        ("HOST_TIMEOUT", "-1"),
    ],
)
def test_bad_settings_refused_at_start(tmp_path, key, value):
    with pytest.raises(ConfigError, match=key):
        load_settings(tmp_path, environ={f"NUBE_{key}": value})


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://nube:hunter2@db.example:5432/x",
        "postgresql://nube:hunter2@db.example/x?sslmode=require",
        "postgres://nube:hunter2@10.0.0.5/x?sslmode=verify-ca",
        "postgresql://nube:hunter2@127.0.0.1,db.example/x",
        "postgresql://nube:hunter2@localhost/x?hostaddr=10.0.0.5",
    ],
)
def test_a_postgresql_server_over_the_network_needs_verified_tls(tmp_path, url):
    with pytest.raises(ConfigError, match="sslmode=verify-full") as refused:
        load_settings(tmp_path, {"DATABASE": url}, environ={})
    assert "hunter2" not in str(refused.value) and "DATABASE_ALLOW_INSECURE" in str(refused.value)


@pytest.mark.parametrize(
    "url, environ",
    [
        ("postgresql://nube:pw@db.example:5432/x?sslmode=verify-full", {}),
        ("postgresql://nube:pw@db.example:5432/x", {"NUBE_DATABASE_ALLOW_INSECURE": "yes"}),
        ("postgresql://nube:pw@db.example:5432/x", {"PGSSLMODE": "verify-full"}),
        ("postgresql://nube@127.0.0.1:5432/x", {}),
        ("postgresql://nube@[::1]:5432/x", {}),
        ("postgresql://nube@localhost/x", {}),
        ("postgresql://nube@/x?host=/run/postgresql", {}),
        ("postgresql:///x", {}),
    ],
)
def test_a_loopback_or_verified_postgresql_server_is_accepted(tmp_path, url, environ):
    assert load_settings(tmp_path, {"DATABASE": url}, environ=environ)["DATABASE"] == url


def test_a_remote_pghost_counts_as_the_network(tmp_path):
    with pytest.raises(ConfigError, match="db.example"):
        load_settings(tmp_path, {"DATABASE": "postgresql:///x"}, environ={"PGHOST": "db.example"})


def test_an_unreadable_postgresql_url_is_refused_without_echoing_it(tmp_path):
    with pytest.raises(ConfigError) as refused:
        load_settings(tmp_path, {"DATABASE": "postgresql://u:hunter2@db/x?bogus=1"}, environ={})
    assert "hunter2" not in str(refused.value) and "bogus" not in str(refused.value)


def test_migrations_from_an_empty_file(tmp_path):
    conn = sqlite3.connect(tmp_path / "empty.sqlite")
    assert migrate(conn) == len(MIGRATIONS)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"users", "hosts", "images", "vms", "operations", "operation_log", "audit"} <= tables
    assert migrate(conn) == len(MIGRATIONS)  # a second run changes nothing


def test_newer_schema_refused(tmp_path):
    conn = sqlite3.connect(tmp_path / "future.sqlite")
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(RuntimeError, match="newer"):
        migrate(conn)


def test_app_database_uses_wal_and_foreign_keys(app):
    from app.db import get_db

    if pg.is_url(app.config["DATABASE"]):
        pytest.skip("SQLite's pragmas (PostgreSQL always checks foreign keys)")
    with app.app_context():
        conn = get_db()
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_a_purge_drops_the_database_and_a_new_one_starts_empty(app):
    from app.db import connect, drop_database, ensure_schema
    from app.repositories import users as users_repo

    database = app.config["DATABASE"]
    drop_database(database)
    ensure_schema(database)
    conn = connect(database)
    try:
        assert users_repo.count(conn) == 0
        assert migrator_version(conn) == len(MIGRATIONS)
    finally:
        conn.close()


def test_two_processes_migrating_at_once_run_each_migration_once(tmp_path, postgres_server):
    """The race of two controllers starting on a new database: every migration once."""
    import multiprocessing

    database = str(tmp_path / "race.sqlite")
    if postgres_server is not None:
        database = postgres_server.new_database(migrated=False)
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        results = pool.map(_migrate_in_a_process, [database] * 4)
    assert results == [len(MIGRATIONS)] * 4


def _migrate_in_a_process(database):
    """Migrate a database from a fresh process (for the race test)."""
    from app.db import connect

    conn = connect(database)
    try:
        migrate(conn)
        return migrator_version(conn)
    finally:
        conn.close()
