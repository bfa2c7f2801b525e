"""image.import: an image fetched from a real HTTP server on 127.0.0.1 (IMAGE_IMPORT_ALLOW
allows 127.0.0.0/8 here) is verified, checked, converted and recorded; every refusal (scheme,
credentials, refused addresses and redirects to them, the size cap, checksums, backing files,
cancel) fails with its message and leaves nothing in images/ or staging."""

import hashlib
import http.server
import ipaddress
import json
import socket
import ssl
import subprocess
import threading

import pytest

from app import core
from app.adapters.image_fetch import ImageFetcher, refusal
from app.db import connect
from app.errors import Busy, InvalidInput, OperationFailed
from app.repositories import operations as ops_repo
from app.services import image_import, images
from app.services.import_spec import checksum_in_list
from tests.factories import make_image

MIB = 1 << 20


@pytest.fixture
def config_overrides():
    """Imports from the test's own server on loopback are allowed."""
    return {"IMAGE_IMPORT_ALLOW": "127.0.0.0/8"}


class Routes(http.server.BaseHTTPRequestHandler):
    """Serves the test's routes: path -> dict(body=bytes, status=200, headers={}, length=True,
    after_first=callable run after the first MiB is sent)."""

    routes: dict = {}
    seen: list = []

    def do_GET(self):
        """Answer one GET from the routes table."""
        type(self).seen.append((self.path, self.headers.get("Host")))
        route = self.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        body = route.get("body", b"")
        self.send_response(route.get("status", 200))
        for key, value in route.get("headers", {}).items():
            self.send_header(key, value)
        if route.get("length", True):
            self.send_header("Content-Length", str(len(body)))
        else:
            self.close_connection = True  # the body ends when the connection does
        self.end_headers()
        if "after_first" in route:
            self.wfile.write(body[:MIB])
            self.wfile.flush()
            route["after_first"]()
            body = body[MIB:]
        self.wfile.write(body)

    def log_message(self, *args):
        """Quiet."""


@pytest.fixture
def server():
    """A threaded HTTP server on 127.0.0.1 (port 0); yields (base URL, routes)."""

    class Handler(Routes):
        routes = {}
        seen = []

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.protocol_version = "HTTP/1.0"
    # a short poll: shutdown() waits for one, and every test of the file stops a server
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", Handler
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def qcow2_bytes(tmp_path, name="disk.qcow2", size="64M", backing=None):
    """A small qcow2 made by qemu-img, as bytes."""
    path = tmp_path / name
    args = ["-F", "raw", "-b", str(backing)] if backing else []
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", *args, str(path), size], check=True)
    return path.read_bytes()


def raw_bytes(size=2 * MIB):
    """A raw disk with a boot sector's signature."""
    data = bytearray(size)
    data[510:512] = b"\x55\xaa"
    data[1024:1028] = b"nube"
    return bytes(data)


def sha(data):
    """SHA-256 hex of bytes."""
    return hashlib.sha256(data).hexdigest()


def leftovers(app):
    """Every file and folder in images/ and the staging folder."""
    root = app.extensions["nube"].storage.root
    found = sorted(p.name for p in (root / "images").iterdir())
    if (root / ".staging").exists():
        found += sorted(f".staging/{p.name}" for p in (root / ".staging").iterdir())
    return found


def operations(app):
    """Every operation row, oldest first."""
    conn = connect(app.config["DATABASE"])
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM operations ORDER BY id")]
    finally:
        conn.close()


def log_of(app, op_id):
    """An operation's log messages."""
    conn = connect(app.config["DATABASE"])
    try:
        return [line["message"] for line in ops_repo.log_lines(conn, op_id)]
    finally:
        conn.close()


def fails(app, data, message):
    """Import data; assert it fails with message and leaves nothing behind."""
    with app.app_context(), pytest.raises(OperationFailed) as failure:
        core.importImage(data)
    op = operations(app)[-1]
    assert message in op["error"], op["error"]
    assert message in str(failure.value)
    assert (op["kind"], op["status"]) == ("image.import", "failed")
    assert leftovers(app) == []
    with app.app_context():
        assert images.search() == []
    return op


# --- imports that succeed -----------------------------------------------------------------


def test_a_qcow2_with_its_checksum_is_imported_and_recorded(app, server, tmp_path):
    base, routes = server
    body = qcow2_bytes(tmp_path)
    routes.routes["/images/debian-12.qcow2"] = {"body": body}
    url = f"{base}/images/debian-12.qcow2"
    with app.app_context():
        info = core.importImage(
            {"name": "debian12", "url": url, "sha256": sha(body).upper(), "os": "debian-12"}
        )
        found = images.search()
    assert info == {
        "name": "debian12.qcow2",
        "format": "qcow2",
        "virtual_size": 64 * MIB,
        "actual_size": info["actual_size"],
    }
    image = app.extensions["nube"].storage.images_dir / "debian12.qcow2"
    assert image.read_bytes() == body and oct(image.stat().st_mode & 0o777) == "0o644"
    assert leftovers(app) == ["debian12.qcow2"]
    (record,) = found
    assert {k: record[k] for k in ("os", "sha256", "source", "source_url", "uploaded_by")} == {
        "os": "debian-12",
        "sha256": sha(body),
        "source": "import",
        "source_url": url,
        "uploaded_by": "api",
    }
    op = operations(app)[-1]
    assert (op["kind"], op["target_id"], op["status"]) == (
        "image.import",
        "debian12.qcow2",
        "succeeded",
    )
    assert json.loads(op["result"])["sha256"] == sha(body)
    assert (op["progress_done"], op["progress_total"]) == (4, 4)
    log = log_of(app, op["id"])
    assert any(line.startswith(f"GET {url} (127.0.0.1)") for line in log)
    assert any(line.startswith("fetched ") for line in log)


def test_a_raw_image_is_converted_to_qcow2(app, server):
    base, routes = server
    body = raw_bytes()
    routes.routes["/disk.raw"] = {"body": body}
    with app.app_context():
        info = core.importImage({"name": "disk.img", "url": f"{base}/disk.raw"})
        (record,) = images.search()
    assert (info["name"], info["format"], info["virtual_size"]) == ("disk.img", "qcow2", 2 * MIB)
    image = app.extensions["nube"].storage.images_dir / "disk.img"
    assert image.read_bytes()[:4] == b"QFI\xfb"
    assert record["sha256"] == sha(image.read_bytes())  # the stored file's own
    assert record["os"] is None and record["source"] == "import"
    assert leftovers(app) == ["disk.img"]
    op = operations(app)[-1]
    assert any("converting the raw image to qcow2" in line for line in log_of(app, op["id"]))


def test_a_checksums_file_gives_the_checksum(app, server, tmp_path):
    base, routes = server
    body = qcow2_bytes(tmp_path)
    routes.routes["/d/img.qcow2"] = {"body": body}
    routes.routes["/d/SHA256SUMS"] = {
        "body": f"{'0' * 64}  other.qcow2\n{sha(body)}  img.qcow2\n".encode()
    }
    with app.app_context():
        core.importImage(
            {"name": "img", "url": f"{base}/d/img.qcow2", "checksums_url": f"{base}/d/SHA256SUMS"}
        )
    assert leftovers(app) == ["img.qcow2"]


def test_redirects_are_followed_and_checked(app, server, tmp_path):
    base, routes = server
    body = qcow2_bytes(tmp_path)
    routes.routes["/old"] = {"status": 302, "headers": {"Location": "/new"}}
    routes.routes["/new"] = {"body": body}
    with app.app_context():
        core.importImage({"name": "moved", "url": f"{base}/old", "sha256": sha(body)})
    op = operations(app)[-1]
    assert f"redirected to {base}/new" in log_of(app, op["id"])
    assert leftovers(app) == ["moved.qcow2"]


def test_the_connection_goes_to_the_address_checked_with_the_name_as_host(app, server, tmp_path):
    base, routes = server
    body = qcow2_bytes(tmp_path)
    routes.routes["/x.qcow2"] = {"body": body}
    port = int(base.rsplit(":", 1)[1])
    lookups = []

    def resolve(host, port_, type=0):
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port_))]

    allow = [ipaddress.ip_network("127.0.0.0/8")]
    app.extensions["nube"].image_fetch = ImageFetcher(allow=allow, resolve=resolve)
    with app.app_context():
        core.importImage({"name": "x", "url": f"http://images.example:{port}/x.qcow2"})
    assert lookups == ["images.example"]  # one lookup: the address checked is the one used
    assert routes.seen == [("/x.qcow2", f"images.example:{port}")]


# --- refused on input: nothing written --------------------------------------------------------


@pytest.mark.parametrize(
    "data, message",
    [
        (
            {"name": "x", "url": "file:///etc/passwd"},
            "url must be http:// or https://, not file://",
        ),
        ({"name": "x", "url": "ftp://example.org/x"}, "url must be http:// or https://"),
        ({"name": "x", "url": "http://user:pw@example.org/x"}, "must not carry credentials"),
        ({"name": "x", "url": "http://user@example.org/x"}, "must not carry credentials"),
        ({"name": "x", "url": "http:///x"}, "names no host"),
        ({"name": "x"}, "url is required"),
        ({"name": "x", "url": "http://e.org:99999/x"}, "is not a valid URL"),
        ({"name": "x", "url": "http://e.org/a b"}, "must not contain spaces"),
        ({"name": "x", "url": "http://e.org/x", "sha256": "abc"}, "64 hexadecimal digits"),
        ({"name": "x", "url": "http://e.org/x", "sha256": "g" * 64}, "64 hexadecimal digits"),
        (
            {
                "name": "x",
                "url": "http://e.org/x",
                "sha256": "a" * 64,
                "checksums_url": "http://e.org/S",
            },
            "give sha256 or checksums_url, not both",
        ),
        (
            {"name": "x", "url": "http://e.org/x", "checksums_url": "file:///S"},
            "checksums_url must be",
        ),
        ({"name": "x.raw", "url": "http://e.org/x"}, "an import is stored as qcow2"),
        ({"name": "../x", "url": "http://e.org/x"}, "invalid image name"),
        ({"name": "x", "url": "http://e.org/x", "os": "debian 12; rm"}, "os must be a short name"),
        ({"name": "x", "url": "http://e.org/x", "size": 5}, "unknown image field(s): size"),
        ("x", "image must be a dict"),
    ],
)
def test_bad_input_changes_nothing(app, data, message):
    with app.app_context(), pytest.raises(InvalidInput) as error:
        core.importImage(data)
    assert message in str(error.value)
    assert operations(app) == [] and leftovers(app) == []


def test_refused_while_the_image_exists_or_is_being_imported(app):
    (app.extensions["nube"].storage.images_dir / "taken.qcow2").write_bytes(b"mine")
    with app.app_context():
        with pytest.raises(InvalidInput, match="image taken.qcow2 already exists"):
            core.importImage({"name": "taken", "url": "http://127.0.0.1/x"})
        op_id = image_import.request_import({"name": "new", "url": "http://e.org/x"}, "someone")
        with pytest.raises(Busy, match="image new.qcow2 is being imported"):
            core.importImage({"name": "new.qcow2", "url": "http://e.org/x"})
    assert [op["id"] for op in operations(app)] == [op_id]


def test_members_may_not_import(app):
    with app.app_context():
        from app.services import users

        users.create("ana", "ana-password-1", "member", "test")
        with core.acting_as("ana"), pytest.raises(core.NubeError, match="import"):
            core.importImage({"name": "x", "url": "http://e.org/x"})
    assert operations(app) == []


# --- refused while fetching: nothing left ----------------------------------------------------


def test_a_wrong_checksum_names_both(app, server, tmp_path):
    base, routes = server
    body = qcow2_bytes(tmp_path)
    routes.routes["/x.qcow2"] = {"body": body}
    wrong = "ab" * 32
    fails(
        app,
        {"name": "x", "url": f"{base}/x.qcow2", "sha256": wrong},
        f"checksum mismatch: expected SHA-256 {wrong}, the file fetched from {base}/x.qcow2"
        f" has {sha(body)}",
    )


def test_a_checksums_file_without_the_name_fails(app, server, tmp_path):
    base, routes = server
    routes.routes["/x.qcow2"] = {"body": qcow2_bytes(tmp_path)}
    routes.routes["/SUMS"] = {"body": f"{'1' * 64}  other.qcow2\n".encode()}
    fails(
        app,
        {"name": "x", "url": f"{base}/x.qcow2", "checksums_url": f"{base}/SUMS"},
        f"the checksums file {base}/SUMS has no SHA-256 for 'x.qcow2'",
    )


@pytest.mark.parametrize(
    "location, message",
    [
        ("http://10.1.2.3/x", "refusing to fetch from 10.1.2.3 (a private address;"),
        ("http://169.254.169.254/latest", "refusing to fetch from 169.254.169.254 (a link-local"),
        ("http://[::1]/x", "refusing to fetch from ::1 (a loopback address;"),
        ("file:///etc/passwd", "refusing a redirect to 'file:///etc/passwd'"),
        ("http://u:p@example.org/x", "must not carry credentials"),
    ],
)
def test_a_redirect_to_a_refused_address_fails_before_connecting(app, server, location, message):
    base, routes = server
    routes.routes["/x.qcow2"] = {"status": 302, "headers": {"Location": location}}
    op = fails(app, {"name": "x", "url": f"{base}/x.qcow2"}, message)
    assert routes.seen == [("/x.qcow2", base.split("//")[1])]  # nothing else was asked
    assert "IMAGE_IMPORT_ALLOW does not allow it" in op["error"] or "redirect" in op["error"]


def test_too_many_redirects_fail(app, server):
    base, routes = server
    routes.routes["/loop"] = {"status": 302, "headers": {"Location": "/loop"}}
    fails(app, {"name": "x", "url": f"{base}/loop"}, "more than 5 redirects")


def test_loopback_is_refused_without_the_setting(app, server, tmp_path):
    base, routes = server
    routes.routes["/x.qcow2"] = {"body": qcow2_bytes(tmp_path)}
    app.extensions["nube"].image_fetch = ImageFetcher(allow=())
    fails(
        app,
        {"name": "x", "url": f"{base}/x.qcow2"},
        "refusing to fetch from 127.0.0.1 (a loopback address; IMAGE_IMPORT_ALLOW does not allow"
        " it)",
    )
    assert routes.seen == []


@pytest.mark.parametrize("length", [True, False])
def test_a_body_over_the_cap_fails(app, server, length):
    base, routes = server
    routes.routes["/big.img"] = {"body": raw_bytes(3 * MIB), "length": length}
    app.config["MAX_UPLOAD_MB"] = 2
    message = "is 3.0 MiB, more than the cap of 2.0 MiB" if length else "sent more than the cap"
    fails(app, {"name": "big", "url": f"{base}/big.img"}, message)


def test_an_error_answer_fails(app, server):
    base, _routes = server
    fails(app, {"name": "x", "url": f"{base}/missing"}, f"{base}/missing answered 404")


def test_a_qcow2_with_a_backing_file_is_refused(app, server, tmp_path):
    base, routes = server
    backing = make_image(tmp_path / "secret.raw", size="1M")
    routes.routes["/x.qcow2"] = {"body": qcow2_bytes(tmp_path, backing=backing)}
    fails(
        app, {"name": "x", "url": f"{base}/x.qcow2"}, "images with a backing file are not accepted"
    )


def test_raw_data_that_is_no_disk_is_refused(app, server):
    base, routes = server
    routes.routes["/page"] = {"body": b"<html>Please log in</html>" * 100}
    fails(app, {"name": "x", "url": f"{base}/page"}, "no partition table or boot sector")


def cancel_running(app):
    """Ask the running operation to stop, as its page's Cancel button does."""
    conn = connect(app.config["DATABASE"])
    try:
        op = conn.execute("SELECT id FROM operations WHERE status = 'running'").fetchone()
        ops_repo.request_cancel(conn, op["id"])
    finally:
        conn.close()


def test_a_cancel_mid_stream_leaves_nothing(app, server):
    base, routes = server
    routes.routes["/x.img"] = {
        "body": raw_bytes(4 * MIB),
        "after_first": lambda: cancel_running(app),
    }
    with app.app_context(), pytest.raises(OperationFailed, match="canceled"):
        core.importImage({"name": "x", "url": f"{base}/x.img"})
    op = operations(app)[-1]
    assert (op["status"], op["error"]) == ("canceled", "canceled on request")
    assert leftovers(app) == []


# --- the rules on their own --------------------------------------------------------------------


@pytest.mark.parametrize(
    "address, allow, reason",
    [
        ("127.0.0.1", (), "a loopback address"),
        ("127.0.0.1", ("127.0.0.0/8",), None),
        ("10.0.0.5", (), "a private address"),
        ("10.0.0.5", ("10.0.0.0/24",), None),
        ("192.168.1.1", ("10.0.0.0/8",), "a private address"),
        ("172.16.0.1", (), "a private address"),
        ("169.254.169.254", (), "a link-local address"),
        ("0.0.0.0", (), "an unspecified address"),
        ("224.0.0.1", (), "a multicast address"),
        ("240.0.0.1", (), "a private address"),
        ("100.64.0.1", (), "not a public address"),
        ("fd00::1", (), "a private address"),
        ("fe80::1", (), "a link-local address"),
        ("::ffff:10.0.0.1", (), "a private address"),
        ("2002:7f00:1::1", (), "a loopback address"),  # 6to4 around 127.0.0.1
        ("2002:a00:1::1", (), "a private address"),  # 6to4 around 10.0.0.1
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", (), "a private address"),  # Teredo
        ("fec0::1", (), "a site-local address"),
        ("::", (), "an unspecified address"),
        ("93.184.216.34", (), None),
        ("2606:2800:220:1::1", (), None),
    ],
)
def test_which_addresses_are_refused(address, allow, reason):
    networks = [ipaddress.ip_network(net) for net in allow]
    assert refusal(address, networks) == reason


def test_checksum_lists():
    text = f"{'A' * 64} *disk.img\nSHA256 (other.img) = {'b' * 64}\n{'c' * 64}  ./third.img\n"
    assert checksum_in_list(text, "disk.img") == "a" * 64
    assert checksum_in_list(text, "other.img") == "b" * 64
    assert checksum_in_list(text, "third.img") == "c" * 64
    assert checksum_in_list(text, "missing.img") is None


# --- https: TLS to the checked address, the certificate checked against the URL's name ---------


@pytest.fixture
def tls_server(tmp_path):
    """An HTTPS server on 127.0.0.1 with a self-signed certificate for images.example; yields
    (port, routes, the certificate's path)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=images.example", "-addext", "subjectAltName=DNS:images.example",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip

    class Handler(Routes):
        routes = {}
        seen = []

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1], Handler, cert
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def pinned_resolver(name):
    """A resolver that answers 127.0.0.1 for name only."""

    def resolve(host, port, type=0):
        assert host == name
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    return resolve


def test_https_checks_the_certificate_against_the_urls_name(app, tls_server, tmp_path):
    port, routes, cert = tls_server
    body = qcow2_bytes(tmp_path)
    routes.routes["/x.qcow2"] = {"body": body}
    allow = [ipaddress.ip_network("127.0.0.0/8")]
    url = f"https://images.example:{port}/x.qcow2"
    trusted = ssl.create_default_context(cafile=str(cert))
    nube = app.extensions["nube"]
    nube.image_fetch = ImageFetcher(allow, resolve=pinned_resolver("images.example"))
    fails(app, {"name": "x", "url": url}, "CERTIFICATE_VERIFY_FAILED")  # not trusted here
    nube.image_fetch = ImageFetcher(allow, resolve=pinned_resolver("images.example"), tls=trusted)
    with app.app_context():
        core.importImage({"name": "x", "url": url, "sha256": sha(body)})
    assert leftovers(app) == ["x.qcow2"]


def test_the_allow_setting_is_a_list_of_networks(tmp_path):
    from app.config import ConfigError, load_settings

    def allow(value):
        environ = {"NUBE_IMAGE_IMPORT_ALLOW": value, "NUBE_SECRET_KEY": "k"}
        return load_settings(tmp_path, environ=environ)["IMAGE_IMPORT_ALLOW"]

    assert allow("") == ()
    assert allow("127.0.0.0/8, 10.20.0.0/16 fd00::/8") == tuple(
        ipaddress.ip_network(net) for net in ("127.0.0.0/8", "10.20.0.0/16", "fd00::/8")
    )
    assert allow("192.0.2.7") == (ipaddress.ip_network("192.0.2.7/32"),)
    for bad in ("10.0.0.5/8", "private", "10.0.0.0/33"):
        with pytest.raises(ConfigError, match="IMAGE_IMPORT_ALLOW must list networks"):
            allow(bad)


def test_a_failed_import_can_be_retried(app, server, tmp_path):
    from app.services import retry

    base, routes = server
    fails(app, {"name": "x", "url": f"{base}/later.qcow2", "os": "debian-12"}, "answered 404")
    failed = operations(app)[-1]
    routes.routes["/later.qcow2"] = {"body": qcow2_bytes(tmp_path)}  # the server has it now
    with app.app_context():
        assert retry.actions(failed) == ("retry",)
        new_id = retry.retry(failed["id"], "admin")
        (image,) = images.search()
    assert operations(app)[-1]["id"] == new_id and operations(app)[-1]["status"] == "succeeded"
    assert (image["name"], image["os"]) == ("x.qcow2", "debian-12")


def test_a_vmdk_descriptor_is_named_and_never_opens_what_it_names(app, server, tmp_path):
    # qemu-img's probing would take it for a VMDK and open its extent as the controller's user;
    # Nube reads the magic itself
    extent = tmp_path / "secret"
    extent.write_bytes(b"controller secret" * 64)
    base, routes = server
    descriptor = (
        '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\n'
        f'RW 2 FLAT "{extent}" 0\n'
    ).encode()
    routes.routes["/d.vmdk"] = {"body": descriptor}
    fails(app, {"name": "x", "url": f"{base}/d.vmdk"}, "unsupported image format vmdk")


def test_a_server_that_drips_its_answer_is_given_up_on(app, monkeypatch):
    # one byte at a time never trips the per-read timeout: the answer's deadline does
    monkeypatch.setattr("app.adapters.image_fetch.ANSWER_DEADLINE", 1.0)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop = threading.Event()

    def drip():
        conn, _ = listener.accept()
        with conn:
            while not stop.is_set():
                try:
                    conn.sendall(b"H")
                except OSError:
                    return
                stop.wait(0.2)

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    fetcher = ImageFetcher(allow=[ipaddress.ip_network("127.0.0.0/8")])
    try:
        with pytest.raises(OperationFailed, match="cannot fetch"):
            fetcher.open(f"http://127.0.0.1:{listener.getsockname()[1]}/x", print)
    finally:
        stop.set()
        listener.close()
        thread.join(5)
