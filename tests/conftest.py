"""Fixtures every tier shares: an app on a temp database and repository, logged-in clients,
a ready host and a base image (built with the gen_* helpers of tests/factories.py).

Unit tests marked `slow` start real processes (a huey consumer, the console proxy, real
ansible-runner playbooks); skip them for a quick run with `pytest -m "not slow" tests/unit`.
`make test` runs everything."""

import functools
import os
import re
import shutil

import jinja2
import libvirt
import pytest
from werkzeug.security import generate_password_hash

from app import create_app
from app.db import ensure_schema, get_db
from app.repositories import users as users_repo
from tests import pg_server, sql_coverage
from tests.factories import (
    gen_host,
    gen_image,
    make_image,  # noqa: F401  other tiers import it from here
)
from tests.fixtures.provisioners import RecordingProvisioner
from tests.lab import lab

TEST_DRIVER = "test:///default"  # libvirt's test driver: the unit tier's hosts

ADMIN_PASSWORD = "admin-password-1"
OPERATOR_PASSWORD = "operator-password-1"
# The fixture users' hashes: scrypt as the app writes it, at a lower cost (N=2**10, not
# werkzeug's 2**15). Logging in still checks the password through scrypt; at full cost every
# login of admin_client and operator_client took a tenth of a second.
TEST_HASH_METHOD = "scrypt:1024:8:1"


def open_up(path):
    """Give QEMU (another user) search permission on every folder above path."""
    for parent in [path, *path.parents]:
        if str(parent) in ("/", "/tmp"):
            break
        os.chmod(parent, os.stat(parent).st_mode | 0o711)


@functools.cache
def _hash(password):
    """The scrypt hash of a test password, computed once."""
    return generate_password_hash(password, TEST_HASH_METHOD)


class SessionBytecodeCache(jinja2.BytecodeCache):
    """Compiled templates kept in memory for the session, shared by every test's app: each app
    has its own Jinja environment, and compiling the templates again for each test cost more
    than creating the app. Jinja checks each entry against its template's source."""

    def __init__(self):
        self._code = {}

    def load_bytecode(self, bucket):
        """Fill a bucket from the session's compiled code, if there is any."""
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket):
        """Keep a freshly compiled template for the session."""
        self._code[bucket.key] = bucket.bytecode_to_string()


TEMPLATE_CODE = SessionBytecodeCache()


@pytest.fixture(autouse=True)
def _push_request_context():
    """Switch off pytest-flask's test-wide request context: each request gets its own `g`
    (Flask-Login keeps the user there, so a shared one would log every client in as one)."""
    yield


@pytest.fixture
def provisioner():
    """A recording fake provisioner (unit tier only)."""
    return RecordingProvisioner()


@pytest.fixture
def config_overrides():
    """Settings a test module changes (override this fixture in the module)."""
    return {}


def pytest_collection_modifyitems(config, items):
    """With NUBE_TEST_DATABASE=postgresql, only the tests that reach the database run: the
    others would repeat the SQLite run's work exactly (they never open a connection)."""
    if os.environ.get("NUBE_TEST_DATABASE") != "postgresql":
        return
    uses_database = {"database", "postgres_server"}
    kept, skipped = [], []
    for item in items:
        reaches = uses_database & set(getattr(item, "fixturenames", ()))
        (kept if reaches else skipped).append(item)
    cover_prefix = os.environ.get("NUBE_SQL_COVER")
    if cover_prefix:  # and of those, a statement-covering set (tests/sql_coverage.py)
        kept, dropped = sql_coverage.selection(kept, cover_prefix)
        skipped += dropped
    if skipped:
        config.hook.pytest_deselected(items=skipped)
        items[:] = kept


_tracer = []  # the session's sql_coverage.Tracer, when NUBE_SQL_TRACE asks for one


def pytest_configure(config):
    """With NUBE_SQL_TRACE=<prefix>, record each test's SQL statements (tests/sql_coverage.py)."""
    prefix = os.environ.get("NUBE_SQL_TRACE")
    if not prefix or os.environ.get("NUBE_TEST_DATABASE") == "postgresql":
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    if worker == "main":  # xdist's controller (before any worker starts), or a run without
        sql_coverage.clear(prefix)
        if getattr(config.option, "numprocesses", None):
            return  # the controller runs no test: its workers record them
    tracer = sql_coverage.Tracer(prefix, worker)
    tracer.install()
    _tracer.append(tracer)


def pytest_runtest_logstart(nodeid, location):
    for tracer in _tracer:
        tracer.start(nodeid)


def pytest_runtest_logfinish(nodeid, location):
    for tracer in _tracer:
        tracer.finish(nodeid)


@pytest.fixture(scope="session")
def postgres_server():
    """With NUBE_TEST_DATABASE=postgresql, a PostgreSQL server for the session (stopped by pid
    at its end), with a migrated template database; None otherwise."""
    if os.environ.get("NUBE_TEST_DATABASE") != "postgresql":
        yield None
        return
    reason = pg_server.unavailable_reason()
    if reason:
        pytest.fail(f"NUBE_TEST_DATABASE=postgresql, but {reason}")
    server = pg_server.PostgresServer()
    try:
        server.start()
        server.create_template(ensure_schema)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """A SQLite database migrated once for the session (by the app's own ensure_schema), that
    every test's database is copied from; tests of the migrations migrate files of their own."""
    path = str(tmp_path_factory.mktemp("template") / "nube.sqlite")
    ensure_schema(path)  # its last connection closed: the WAL is checkpointed into the file
    return path


@pytest.fixture
def database(tmp_path, postgres_server, sqlite_template):
    """The test's DATABASE: a SQLite file or a fresh PostgreSQL database (dropped after), each
    a copy of a migrated template."""
    if postgres_server is None:
        path = str(tmp_path / "nube.sqlite")
        shutil.copyfile(sqlite_template, path)
        yield path
        return
    url = postgres_server.new_database()
    try:
        yield url
    finally:
        postgres_server.drop_database(url)


@pytest.fixture
def app(tmp_path, provisioner, config_overrides, database):
    """An app on the test's database, a temp repository and libvirt's test driver."""
    repository = tmp_path / "iaas"
    (repository / "images").mkdir(parents=True)
    (repository / "vms").mkdir()
    application = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "DATABASE": database,
            "REPOSITORY": str(repository),
            "LIBVIRT_URI": TEST_DRIVER,
            "PROVISIONER": provisioner,
            "QUEUE": "immediate",
            "SECRET_KEY": "test-secret",
            "STOP_TIMEOUT": 1,
            "HOST_TIMEOUT": 5,
            "LOGIN_RATE_LIMIT": 1000,
            **config_overrides,
        }
    )
    application.jinja_env.bytecode_cache = TEMPLATE_CODE
    with application.app_context():
        # hashed once per session: scrypt is slow on purpose, and every test needs two users
        conn = get_db()
        users_repo.insert(conn, "admin", _hash(ADMIN_PASSWORD), "admin")
        users_repo.insert(conn, "oper", _hash(OPERATOR_PASSWORD), "operator")
    yield application
    application.extensions["nube"].hypervisor.close()
    if application.config["LIBVIRT_URI"] == TEST_DRIVER:
        reset_test_driver()


def reset_test_driver():
    """Leave libvirt's test driver as a new connection finds it. Its state lives as long as any
    connection to it does, and the adapter closes its own in the background: without this, a
    test's domains could still be there when the next test connects."""
    conn = libvirt.open(TEST_DRIVER)
    try:
        for domain in conn.listAllDomains():
            if domain.name() == "test":  # the driver's own domain
                continue
            if domain.isActive():
                domain.destroy()
            if domain.isPersistent():
                domain.undefine()
    finally:
        conn.close()


@pytest.fixture
def ctx(app):
    """Run the test inside the app's context."""
    with app.app_context():
        yield app


@pytest.fixture
def image(app):
    """A small raw base image in the repository; returns its name."""
    return gen_image(app, "base.raw")


@pytest.fixture
def host_fields():
    """Fields a test module gives its ready host (override this fixture in the module)."""
    return {}


@pytest.fixture
def host(app, host_fields):
    """A ready host h1 at 127.0.0.1 on libvirt's test driver, registered without preparation
    (the recording provisioner runs no host playbook): the host dict core.addHost returns."""
    return gen_host(app, **host_fields)


def csrf_token(client, path):
    """The CSRF token of the form at path."""
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client, username, password, next_=None):
    """Log a test client in through the real login form (sent to next_ afterwards)."""
    token = csrf_token(client, "/login")
    return client.post(
        "/login",
        query_string={"next": next_} if next_ else None,
        data={"username": username, "password": password, "csrf_token": token},
    )


def row(app, sql, *params):
    """One row of a query, as a dict."""
    with app.app_context():
        found = get_db().execute(sql, params).fetchone()
        return dict(found) if found else None


@pytest.fixture
def admin_client(app):
    """A client logged in as an admin."""
    client = app.test_client()
    assert login(client, "admin", ADMIN_PASSWORD).status_code == 302
    return client


@pytest.fixture
def operator_client(app):
    """A client logged in as an operator."""
    client = app.test_client()
    assert login(client, "oper", OPERATOR_PASSWORD).status_code == 302
    return client


# Lab hosts (integration and browser tiers): started once per session, stopped by pid.
LAB_TOOLS = ["unshare", "nsenter", "libvirtd", "virtlogd", "sshd", "sshpass", "sudo", "virsh"]
LAB_TOOLS += ["ip", "nft"]  # the hosts' network namespaces; the isolation test's counters


def lab_unavailable_reason() -> str | None:
    """Say why lab hosts cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "lab hosts need root (namespaces, users, daemons)"
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    missing = [tool for tool in LAB_TOOLS if not shutil.which(tool, path=path)]
    if missing:
        return f"lab hosts need {', '.join(missing)} (make test installs the host packages)"
    return None


@pytest.fixture(scope="session")
def lab_hosts():
    """Start three lab hosts for the session and tear them down after it."""
    reason = lab_unavailable_reason()
    if reason and os.environ.get("CI"):
        pytest.fail(f"CI must run the lab tiers: {reason}")
    if reason:
        pytest.skip(reason)
    try:
        yield lab.up(3)  # lab3: where a guest live-migrates on its network
    finally:
        lab.down()
