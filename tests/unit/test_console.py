"""The VM console: links (mint, expiry, single use, bound to a user), the proxy's token plugin
and handler with a fake tunnel, the console page and its CSP."""

import base64
import hashlib
import multiprocessing
import os
import re
import signal
import socket
import struct
import threading
from pathlib import Path

import libvirt
import pytest

from app import core, create_app
from app.adapters.hypervisor import Hypervisor, VncDisplay
from app.console import tunnel as tunnel_module
from app.console.proxy import ConsoleProxy, ConsoleTokens, session_user_id, token_from_path
from app.console.tunnel import Tunnel, TunnelError, ssh_command
from app.db import get_db
from app.services import console
from app.services.console import ConsoleRefused, ConsoleTarget
from app.web.console import routes as console_routes
from tests.conftest import csrf_token
from tests.html import page as parse
from tests.wait import join_all, stop_process, wait_for

RFB_GREETING = b"RFB 003.008\n"


# ---------------------------------------------------------------- helpers (the integration
# tier uses the websocket ones too)


def ws_open(port, path, cookie=None, timeout=10.0):
    """Open a websocket to 127.0.0.1:port by hand; (HTTP status, socket, bytes after the head)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        "Origin: http://127.0.0.1",
    ]
    if cookie:
        lines.append(f"Cookie: {cookie}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    if not head:
        return 0, sock, b""
    head, _, rest = head.partition(b"\r\n\r\n")
    status = int(head.split(b"\r\n", 1)[0].split()[1])
    if status == 101:
        accept = base64.b64encode(
            hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
        )
        assert accept in head, head
    return status, sock, rest


class Frames:
    """Reads websocket frames from a socket (server frames are never masked)."""

    def __init__(self, sock, buffered=b""):
        self.sock, self.buffer = sock, buffered

    def _take(self, size):
        while len(self.buffer) < size:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("websocket closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def next(self):
        """(opcode, payload) of the next frame."""
        first, second = self._take(2)
        size = second & 0x7F
        if size == 126:
            size = struct.unpack(">H", self._take(2))[0]
        elif size == 127:
            size = struct.unpack(">Q", self._take(8))[0]
        return first & 0x0F, self._take(size)

    def read(self, size):
        """At least `size` bytes of binary payload (skipping pings)."""
        data = b""
        while len(data) < size:
            opcode, payload = self.next()
            if opcode == 8:
                raise ConnectionError(f"websocket closed: {payload!r}")
            if opcode == 2:
                data += payload
        return data


def ws_send(sock, payload):
    """Send one masked binary frame (clients must mask)."""
    mask = os.urandom(4)
    header = bytes([0x82])
    if len(payload) < 126:
        header += bytes([0x80 | len(payload)])
    else:
        header += bytes([0x80 | 126]) + struct.pack(">H", len(payload))
    sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def free_port():
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def session_cookie(client):
    """The Cookie header a browser logged in as this test client would send."""
    return f"session={client.get_cookie('session').value}"


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def running_vm(app, host, image):
    """A running VM (on the test driver); returns its id."""
    with app.app_context():
        core.addVm({"id": "con-vm", "image": image, "mem": 64})
        core.startVm("con-vm")
    return "con-vm"


@pytest.fixture
def stopped_vm(app, host, image):
    """A stopped VM; returns its id."""
    with app.app_context():
        core.addVm({"id": "con-off", "image": image, "mem": 64})
    return "con-off"


@pytest.fixture
def vnc(monkeypatch):
    """The test driver gives autoport domains no port: pretend the VM's VNC is on 5901."""
    calls = []

    def fake(self, host, name):
        calls.append((host["name"], name))
        return VncDisplay("127.0.0.1", 5901)

    monkeypatch.setattr(Hypervisor, "vnc_display", fake)
    return calls


def user_id(app, username):
    """A user's id."""
    with app.app_context():
        return (
            get_db().execute("SELECT id FROM users WHERE username = ?", (username,)).fetchone()[0]
        )


def open_console(client, vm_id):
    """Press the VM page's Console button; the response (a redirect to the link)."""
    return client.post(
        f"/vms/{vm_id}/console", data={"csrf_token": csrf_token(client, f"/vms/{vm_id}")}
    )


def mint(app, vm_id, username="oper"):
    """A console link issued straight through the service."""
    with app.test_request_context():
        return console.mint(vm_id, user_id(app, username), username)


def audit_actions(app):
    """(actor, action, target) of every audit record, oldest first."""
    with app.app_context():
        rows = get_db().execute("SELECT actor, action, target FROM audit ORDER BY id").fetchall()
    return [tuple(row) for row in rows]


# ---------------------------------------------------------------- minting links (web)


def test_console_needs_login(app, running_vm):
    client = app.test_client()
    response = client.get("/console/whatever")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    token = csrf_token(client, "/login")
    response = client.post(f"/vms/{running_vm}/console", data={"csrf_token": token})
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    with app.app_context():
        assert get_db().execute("SELECT COUNT(*) FROM console_tokens").fetchone()[0] == 0


def test_minting_needs_a_post_with_csrf(operator_client, running_vm):
    assert operator_client.get(f"/vms/{running_vm}/console").status_code == 405
    assert operator_client.post(f"/vms/{running_vm}/console").status_code == 400


def test_operator_opens_the_console_of_a_running_vm(app, operator_client, running_vm):
    form = parse(operator_client.get(f"/vms/{running_vm}")).by_id("console-form")
    assert form["action"] == f"/vms/{running_vm}/console" and form.button().text == "Console"
    response = open_console(operator_client, running_vm)
    assert response.status_code == 303
    link = response.headers["Location"]
    token = re.fullmatch(r"/console/([A-Za-z0-9_-]{43})", link).group(1)
    page = operator_client.get(link)
    doc = parse(page)
    assert page.status_code == 200
    screen = doc.by_id("console-screen")
    assert screen["data-token"] == token and screen["data-port"] == "6080"
    assert doc.one("script", src="/static/console.js")["type"] == "module"
    assert page.headers["Cache-Control"] == "no-store"
    with app.app_context():
        row = get_db().execute("SELECT * FROM console_tokens").fetchone()
    # only a hash is stored; rendering the page does not spend the link
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(tuple(row)) and row["used_at"] is None
    assert row["user_id"] == user_id(app, "oper") and row["vm_id"] == running_vm
    assert ("oper", "vm.console", f"vm:{running_vm}") in audit_actions(app)


def test_no_console_for_a_stopped_or_missing_vm(app, operator_client, stopped_vm):
    assert not parse(operator_client.get(f"/vms/{stopped_vm}")).has_element(id="console-form")
    response = open_console(operator_client, stopped_vm)
    assert response.status_code == 302 and response.headers["Location"] == f"/vms/{stopped_vm}"
    follow = parse(operator_client.get(response.headers["Location"]))
    assert follow.alert("only a running VM has a console")
    token = csrf_token(operator_client, f"/vms/{stopped_vm}")
    assert operator_client.post("/vms/ghost/console", data={"csrf_token": token}).status_code == 404
    with app.app_context():
        assert get_db().execute("SELECT COUNT(*) FROM console_tokens").fetchone()[0] == 0


def test_another_users_link_is_not_found(app, admin_client, operator_client, running_vm):
    link = open_console(operator_client, running_vm).headers["Location"]
    assert admin_client.get(link).status_code == 404
    assert admin_client.get("/console/not-a-token").status_code == 404
    assert admin_client.get("/console/" + "x" * 300).status_code == 404
    assert operator_client.get(link).status_code == 200  # still unused: the owner may use it


def test_an_expired_link_offers_a_new_one(app, operator_client, running_vm, vnc):
    link = open_console(operator_client, running_vm).headers["Location"]
    with app.app_context():
        get_db().execute("UPDATE console_tokens SET expires_at = '2000-01-01T00:00:00.000000Z'")
    page = operator_client.get(link)
    doc = parse(page)
    assert page.status_code == 410 and "expired" in doc.by_id("console-expired").text
    assert doc.form(f"/vms/{running_vm}/console").button().text == "Open a new console"
    with app.app_context(), pytest.raises(ConsoleRefused, match="expired"):
        console.redeem(link.rsplit("/", 1)[1], user_id(app, "oper"))
    assert ("oper", "vm.console.refused", f"vm:{running_vm}") in audit_actions(app)


def test_the_ttl_setting_sets_the_expiry(app, running_vm):
    app.config["CONSOLE_TOKEN_TTL"] = 0
    token = mint(app, running_vm)
    with app.app_context(), pytest.raises(ConsoleRefused, match="expired"):
        console.redeem(token, user_id(app, "oper"))


def test_a_link_works_once(app, operator_client, running_vm, vnc):
    link = open_console(operator_client, running_vm).headers["Location"]
    token = link.rsplit("/", 1)[1]
    with app.app_context():
        target = console.redeem(token, user_id(app, "oper"), "127.0.0.9")
        assert target == ConsoleTarget(
            vm_id=running_vm,
            username="oper",
            host_name="h1",
            address="127.0.0.1",
            user="root",
            vnc_address="127.0.0.1",
            vnc_port=5901,
        )
        with pytest.raises(ConsoleRefused, match="already used"):
            console.redeem(token, user_id(app, "oper"))
        row = get_db().execute("SELECT used_at, used_from FROM console_tokens").fetchone()
        assert row["used_at"] and row["used_from"] == "127.0.0.9"
    page = operator_client.get(link)
    assert page.status_code == 410 and "already used" in parse(page).by_id("console-expired").text
    assert vnc == [("h1", running_vm)]


def test_a_link_only_opens_for_its_users_session(app, running_vm, vnc):
    token = mint(app, running_vm, "oper")
    with app.app_context():
        with pytest.raises(ConsoleRefused, match="session"):
            console.redeem(token, user_id(app, "admin"))
        # refused means spent: a thief who tried it first leaves nothing to retry with
        with pytest.raises(ConsoleRefused, match="already used"):
            console.redeem(token, user_id(app, "oper"))
    token = mint(app, running_vm, "oper")
    with app.app_context(), pytest.raises(ConsoleRefused, match="session"):
        console.redeem(token, None)
    assert vnc == []


def test_a_deleted_users_link_opens_nothing(app, running_vm, vnc):
    token = mint(app, running_vm, "oper")
    oper = user_id(app, "oper")
    with app.app_context():
        get_db().execute("DELETE FROM users WHERE username = 'oper'")
        with pytest.raises(ConsoleRefused, match="unknown"):
            console.redeem(token, oper)
        assert get_db().execute("SELECT COUNT(*) FROM console_tokens").fetchone()[0] == 0


def test_a_vm_stopped_after_minting_has_no_display(app, running_vm, monkeypatch):
    token = mint(app, running_vm)
    monkeypatch.setattr(Hypervisor, "vnc_display", lambda self, host, name: None)
    with app.app_context(), pytest.raises(ConsoleRefused, match="not running"):
        console.redeem(token, user_id(app, "oper"))


def test_expired_links_are_pruned_when_new_ones_are_minted(app, running_vm):
    mint(app, running_vm)
    with app.app_context():
        get_db().execute("UPDATE console_tokens SET expires_at = '2000-01-01T00:00:00.000000Z'")
    mint(app, running_vm)
    with app.app_context():
        assert get_db().execute("SELECT COUNT(*) FROM console_tokens").fetchone()[0] == 1


# ---------------------------------------------------------------- CSP


def test_only_the_console_page_may_connect_to_the_proxy(app, operator_client, running_vm):
    link = open_console(operator_client, running_vm).headers["Location"]
    policy = operator_client.get(link).headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["connect-src"] == "'self' ws://localhost:6080 wss://localhost:6080"
    assert directives["default-src"] == "'self'" and directives["frame-ancestors"] == "'none'"
    other = operator_client.get(f"/vms/{running_vm}").headers["Content-Security-Policy"]
    assert "ws:" not in other and "connect-src 'self'" in other


@pytest.mark.parametrize(
    ("base_url", "origins"),
    [
        ("http://nube.example:5000", "ws://nube.example:7001 wss://nube.example:7001"),
        ("https://10.0.0.5", "ws://10.0.0.5:7001 wss://10.0.0.5:7001"),
        ("http://[::1]:5000", "ws://[::1]:7001 wss://[::1]:7001"),
    ],
)
def test_the_proxy_origin_is_the_dashboards_host_at_the_console_port(app, base_url, origins):
    app.config["CONSOLE_PORT"] = 7001
    with app.test_request_context("/", base_url=base_url):
        assert console_routes.proxy_origins() == origins


def test_a_missing_novnc_install_is_said_on_the_page(
    app, operator_client, running_vm, monkeypatch, tmp_path
):
    monkeypatch.setattr(app, "static_folder", str(tmp_path))
    link = open_console(operator_client, running_vm).headers["Location"]
    doc = parse(operator_client.get(link))
    assert "npm ci --prefix static" in doc.by_id("console-missing").text
    assert not [src for src in doc.scripts() if "console.js" in src]


# ---------------------------------------------------------------- the hypervisor's VNC display


def test_vnc_display_reads_the_live_xml():
    hypervisor = Hypervisor("test:///default", timeout=5)
    host = {"id": 1, "name": "t", "address": "127.0.0.1", "user": "root"}
    xml = (
        "<domain type='test'><name>{name}</name><memory>65536</memory><os><type>hvm</type></os>"
        "<devices><graphics type='vnc' {port} listen='127.0.0.1'/></devices></domain>"
    )
    conn = libvirt.open("test:///default")
    try:
        fixed = conn.defineXML(xml.format(name="con-vnc1", port="port='5907' autoport='no'"))
        auto = conn.defineXML(xml.format(name="con-vnc2", port="autoport='yes'"))
        assert hypervisor.vnc_display(host, "con-vnc1") is None  # not running
        fixed.create()
        auto.create()
        assert hypervisor.vnc_display(host, "con-vnc1") == VncDisplay("127.0.0.1", 5907)
        assert hypervisor.vnc_display(host, "con-vnc2") is None  # no port given
    finally:
        for dom in conn.listAllDomains():
            if dom.name().startswith("con-vnc"):
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
        conn.close()
        hypervisor.close()


# ---------------------------------------------------------------- the token plugin


class FakeOpener:
    """Stands in for open_tunnel: records its calls, returns a tunnel over a socket pair."""

    def __init__(self, fail=None):
        self.calls, self.fail = [], fail

    def __call__(self, target, keyfile, known_hosts, timeout):
        self.calls.append((target, keyfile, known_hosts, timeout))
        if self.fail:
            raise TunnelError(self.fail)
        ours, theirs = socket.socketpair()
        theirs.sendall(RFB_GREETING)
        return Tunnel(target, ours)


def test_the_plugin_redeems_and_opens_a_tunnel_with_the_controllers_key(
    app, running_vm, vnc, monkeypatch
):
    opener = FakeOpener()
    monkeypatch.setattr(tunnel_module, "open_tunnel", opener)
    plugin = ConsoleTokens(app)
    token = mint(app, running_vm)
    tunnel = plugin.lookup(
        token, session_user_id=str(user_id(app, "oper")), remote_addr="127.0.0.1"
    )
    try:
        assert tunnel.sock.recv(64) == RFB_GREETING
    finally:
        tunnel.close()
    (target, keyfile, known_hosts, timeout), *more = opener.calls
    assert not more
    assert (target.address, target.user, target.vnc_port) == ("127.0.0.1", "root", 5901)
    ssh = os.path.join(app.instance_path, "ssh")
    assert keyfile == os.path.join(ssh, "id_ed25519")
    assert known_hosts == os.path.join(ssh, "known_hosts")
    assert timeout == app.config["HOST_TIMEOUT"]
    assert ("oper", "vm.console.open", f"vm:{running_vm}") in audit_actions(app)
    with pytest.raises(ConsoleRefused, match="already used"):
        plugin.lookup(token, session_user_id=str(user_id(app, "oper")))
    with pytest.raises(ConsoleRefused, match="unknown"):
        plugin.lookup("forged", session_user_id=str(user_id(app, "oper")))
    assert len(opener.calls) == 1  # a refused token opens no tunnel


def test_a_failed_tunnel_is_audited(app, running_vm, vnc):
    plugin = ConsoleTokens(app, opener=FakeOpener(fail="Host key verification failed."))
    token = mint(app, running_vm)
    with pytest.raises(TunnelError):
        plugin.lookup(token, session_user_id=str(user_id(app, "oper")))
    with app.app_context():
        detail = (
            get_db()
            .execute("SELECT detail FROM audit WHERE action = 'vm.console.failed'")
            .fetchone()[0]
        )
    assert "Host key verification failed" in detail and "5901" in detail


def test_the_session_cookie_names_its_user(app, operator_client):
    cookie = session_cookie(operator_client)
    assert session_user_id(app, cookie) == str(user_id(app, "oper"))
    assert session_user_id(app, f"other=1; {cookie}") == str(user_id(app, "oper"))
    value = operator_client.get_cookie("session").value
    assert session_user_id(app, f"session={value[:-2]}xx") is None  # a forged signature
    assert session_user_id(app, "") is None and session_user_id(app, None) is None


def test_token_from_path():
    assert token_from_path("/?token=abc-_1") == "abc-_1"
    assert token_from_path("/websockify?x=1&token=t%2Bu") == "t+u"
    assert token_from_path("/") is None


def test_the_ssh_command_checks_host_keys_and_forwards_stdio():
    target = ConsoleTarget("vm", "oper", "h1", "127.0.0.2", "nube-lab1", "127.0.0.1", 5900)
    command = ssh_command(target, "/i/ssh/id_ed25519", "/i/ssh/known_hosts", 10)
    text = " ".join(command)
    assert command[:3] == ["ssh", "-i", "/i/ssh/id_ed25519"]
    for option in (
        "UserKnownHostsFile=/i/ssh/known_hosts",
        "StrictHostKeyChecking=yes",
        "BatchMode=yes",
        "IdentitiesOnly=yes",
        "GlobalKnownHostsFile=/dev/null",
    ):
        assert f"-o {option}" in text
    assert command[-6:] == ["-W", "127.0.0.1:5900", "-l", "nube-lab1", "--", "127.0.0.2"]


def test_a_tunnel_that_gets_no_greeting_fails_with_sshs_words(tmp_path, monkeypatch):
    fake_ssh = tmp_path / "ssh"
    fake_ssh.write_text("#!/bin/sh\necho 'channel 0: open failed: connect failed' >&2\nexit 255\n")
    fake_ssh.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    target = ConsoleTarget("vm", "oper", "h1", "127.0.0.2", "u", "127.0.0.1", 5900)
    with pytest.raises(TunnelError, match="open failed"):
        tunnel_module.open_tunnel(target, "/k", "/kh", timeout=1)


# ---------------------------------------------------------------- the proxy, end to end


@pytest.fixture
def fake_vnc():
    """A TCP server that speaks RFB's first line and echoes what it gets; its port. Its thread
    polls a stop flag, so teardown ends it within a second or fails the test."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.1)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(0.1)
                conn.sendall(RFB_GREETING)
                while not stop.is_set():
                    try:
                        data = conn.recv(4096)
                    except TimeoutError:
                        continue
                    if not data:
                        break
                    conn.sendall(data)

    thread = threading.Thread(target=serve, name="fake VNC server", daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    join_all([thread], timeout=5, message="the fake VNC server")
    server.close()


def _serve(config, port, vnc_port):
    """In the spawned proxy process: an app on the test's database and instance; the VM's
    display and its tunnel go straight to the fake VNC server."""
    Hypervisor.vnc_display = lambda self, host, name: VncDisplay("127.0.0.1", 5901)

    def opener(target, keyfile, known_hosts, timeout):
        return Tunnel(target, socket.create_connection(("127.0.0.1", vnc_port)))

    # websockify forks a handler per connection, as `python -m app.console` does; this
    # process has one thread, so forking is safe here (spawn passed its method on to us)
    multiprocessing.set_start_method("fork", force=True)
    ConsoleProxy(create_app(config), port=port, opener=opener).start_server()


# What the proxy process needs of the test's app (its provisioner object stays behind).
PROXY_SETTINGS = ("DATABASE", "REPOSITORY", "LIBVIRT_URI", "QUEUE", "SECRET_KEY", "HOST_TIMEOUT")


@pytest.fixture
def proxy(app, fake_vnc, vnc):
    """The real console proxy on a free port, in a spawned process: a fork of this threaded
    pytest process could inherit a lock another thread holds, and hang."""
    port = free_port()
    config = {key: app.config[key] for key in PROXY_SETTINGS}
    config.update(TESTING=True, INSTANCE_PATH=app.instance_path, PROVISIONER="recording")
    process = multiprocessing.get_context("spawn").Process(
        target=_serve,
        args=(config, port, fake_vnc),  # not daemonic: it forks handlers
    )
    process.start()

    def listening():
        if not process.is_alive():
            pytest.fail(f"the console proxy exited with code {process.exitcode} before listening")
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True

    try:
        wait_for(
            listening,
            timeout=30,
            interval=0.05,
            message=f"the console proxy to listen on port {port}",
            ignore=(OSError,),
        )
        yield port
    finally:
        handlers = child_pids(process.pid)  # websockify forks one per connection
        stop_process(process, timeout=10, message="the console proxy")
        try:
            wait_for(
                lambda: not [pid for pid in handlers if pid_alive(pid)],
                timeout=10,
                message=lambda: f"the proxy's handler processes {handlers} to end",
            )
        finally:
            for pid in filter(pid_alive, handlers):  # never leave one behind
                os.kill(pid, signal.SIGKILL)


def child_pids(pid):
    """The pids of a live process's children (from /proc), or [] once it is gone."""
    try:
        return [
            int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        ]
    except OSError:
        return []


def pid_alive(pid):
    """Whether a process (not a zombie) still runs."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.slow  # the real console proxy in its own process
def test_the_proxy_carries_rfb_for_a_good_link_only(app, operator_client, running_vm, proxy):
    cookie = session_cookie(operator_client)
    token = open_console(operator_client, running_vm).headers["Location"].rsplit("/", 1)[1]
    # without the session cookie: refused before the upgrade, and the link is spent
    status, sock, _ = ws_open(proxy, f"/?token={token}")
    sock.close()
    assert status == 403
    token = open_console(operator_client, running_vm).headers["Location"].rsplit("/", 1)[1]
    status, sock, rest = ws_open(proxy, f"/?token={token}", cookie=cookie)
    try:
        assert status == 101
        frames = Frames(sock, rest)
        assert frames.read(len(RFB_GREETING)) == RFB_GREETING
        ws_send(sock, b"RFB 003.008\n")
        assert frames.read(12) == b"RFB 003.008\n"  # the fake server echoes
    finally:
        sock.close()
    for refused in (token, "forged", ""):
        status, sock, _ = ws_open(proxy, f"/?token={refused}", cookie=cookie)
        sock.close()
        assert status == 403, refused
    actions = [action for _actor, action, _target in audit_actions(app)]
    assert actions.count("vm.console.open") == 1 and "vm.console.refused" in actions
