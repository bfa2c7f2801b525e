"""The VM console for real: lab host 1, a VM booted from a blank disk, `python -m app.console`,
an SSH tunnel with the controller's key, and both a hand-made RFB client and Chromium (noVNC).

Only lab host 1 is used, registered under its own name and removed at the end, so the cluster
tests (which use both lab hosts) are not disturbed.
"""

import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from werkzeug.security import generate_password_hash
from werkzeug.serving import make_server

from app import core, create_app
from app.db import get_db
from app.repositories import users as users_repo
from tests.conftest import csrf_token, login, make_image
from tests.unit.test_console import Frames, free_port, ws_open, ws_send
from tests.wait import wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "con-blank.qcow2"
VM = "con-blank"
USER, PASSWORD = "con-admin", "console-admin-pw"


def descendants(pid):
    """pid and every process below it (from /proc)."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def our_tunnels(keyfile):
    """Pids of ssh processes that use this controller's key."""
    result = subprocess.run(["pgrep", "-f", f"ssh -i {keyfile}"], capture_output=True, text=True)
    return [int(pid) for pid in result.stdout.split()]


def listeners(netns=None):
    """(local address, port, pids) of every listening TCP socket on the machine (`ss -ltnp`),
    or in the network namespace named netns (a lab host's)."""
    inside = ["ip", "netns", "exec", netns] if netns else []
    out = subprocess.run(
        [*inside, "ss", "-ltnpH"], capture_output=True, text=True, check=True
    ).stdout
    found = []
    for line in out.splitlines():
        parts = line.split()
        address, _, port = parts[3].rpartition(":")
        pids = {int(p.split("=")[1]) for p in line.split(",") if p.startswith("pid=")}
        found.append((address.strip("[]"), int(port), pids))
    return found


@pytest.fixture(scope="module")
def consoled(lab_hosts):
    """A controller with lab host 1 and a running VM, its web server and its console proxy."""
    os.environ["PATH"] = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    top = Path(tempfile.mkdtemp(prefix="nube-con-"))
    top.chmod(0o755)  # QEMU (libvirt-qemu) must traverse every folder above the disks
    repository = top / "export" / "iaas"
    settings = {
        "DATABASE": str(top / "nube.sqlite"),
        "REPOSITORY": str(repository),
        "QUEUE": "immediate",
        "EXPORT": "none",
        "STOP_TIMEOUT": 3,
        "HOST_TIMEOUT": 20,
        "SECRET_KEY": "console-integration",
        "CONSOLE_PORT": free_port(),
    }
    app = create_app({**settings, "INSTANCE_PATH": str(top / "instance")})
    lab1 = lab_hosts[0]
    host_id = proxy = web = None
    logs = {"proxy": top / "console.log"}
    try:
        with app.app_context():
            core.init()
            make_image(repository / "images" / IMAGE, size="64M", fmt="qcow2")
            users_repo.insert(get_db(), USER, generate_password_hash(PASSWORD), "admin")
            host_id = core.addHost(
                {
                    "address": lab1["address"],
                    "user": lab1["user"],
                    "password": lab1["password"],
                    "name": "con-lab1",
                    "share": "bind",
                    "network": "none",
                }
            )["id"]
            core.addVm({"id": VM, "image": IMAGE, "mem": 64, "host": host_id})
            core.startVm(VM)
        env = {
            **os.environ,
            "NUBE_INSTANCE_PATH": app.instance_path,
            **{f"NUBE_{key}": str(value) for key, value in settings.items()},
        }
        with open(logs["proxy"], "ab") as log:
            proxy = subprocess.Popen(
                [sys.executable, "-m", "app.console"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        web = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=web.serve_forever, daemon=True).start()
        port = settings["CONSOLE_PORT"]

        def listening():
            assert proxy.poll() is None, logs["proxy"].read_text()
            return any(p == port for _a, p, _pids in listeners())

        wait_for(listening, timeout=30, interval=0.1, message="the console proxy to listen")
        yield {
            "app": app,
            "port": port,
            "url": f"http://127.0.0.1:{web.server_port}",
            "proxy": proxy,
            "keyfile": str(Path(app.instance_path) / "ssh" / "id_ed25519"),
            "logs": logs,
            "netns": lab1["netns"],
        }
    finally:
        if web is not None:
            web.shutdown()
            web.server_close()
        if proxy is not None and proxy.poll() is None:
            os.kill(proxy.pid, signal.SIGTERM)
            try:
                proxy.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proxy.kill()
                proxy.wait()
        try:
            with app.app_context():
                if host_id is not None:
                    core.removeHost(host_id)  # forces the VM off and removes it first
                core.destroy()
        finally:
            app.extensions["nube"].hypervisor.close()
            shutil.rmtree(top, ignore_errors=True)


def logged_in(consoled):
    """A test client of the same app, logged in (its cookie is what a browser would send)."""
    client = consoled["app"].test_client()
    assert login(client, USER, PASSWORD).status_code == 302
    return client


def new_token(client):
    """Press the VM page's Console button; the token of the link it redirects to."""
    response = client.post(
        f"/vms/{VM}/console", data={"csrf_token": csrf_token(client, f"/vms/{VM}")}
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    return response.headers["Location"].rsplit("/", 1)[1]


def cookie_of(client):
    """The Cookie header of a test client's session."""
    return f"session={client.get_cookie('session').value}"


class Rfb:
    """Just enough of an RFB 3.8 client to read a raw framebuffer over the websocket."""

    def __init__(self, sock, rest):
        self.sock, self.frames = sock, Frames(sock, rest)
        self.pending = b""

    def read(self, size):
        while len(self.pending) < size:
            self.pending += self.frames.read(1)
        data, self.pending = self.pending[:size], self.pending[size:]
        return data

    def handshake(self):
        """Version, security None, shared ClientInit; returns (width, height, bpp, name)."""
        assert self.read(12) == b"RFB 003.008\n"
        ws_send(self.sock, b"RFB 003.008\n")
        count = self.read(1)[0]
        types = self.read(count)
        assert 1 in types, f"no 'None' security type: {list(types)}"
        ws_send(self.sock, b"\x01")
        assert self.read(4) == b"\x00\x00\x00\x00"  # SecurityResult OK
        ws_send(self.sock, b"\x01")  # shared
        width, height = struct.unpack(">HH", self.read(4))
        bpp = self.read(16)[0]
        name = self.read(struct.unpack(">I", self.read(4))[0]).decode()
        ws_send(self.sock, struct.pack(">BxHi", 2, 1, 0))  # SetEncodings: raw only
        return width, height, bpp, name

    def lit_pixels(self, width, height, bpp):
        """Request the whole screen; how many of its pixels are not black."""
        ws_send(self.sock, struct.pack(">BBHHHH", 3, 0, 0, 0, width, height))
        kind, rects = struct.unpack(">BxH", self.read(4))
        assert kind == 0, f"unexpected server message {kind}"
        lit = 0
        step = bpp // 8
        for _ in range(rects):
            _x, _y, w, h, encoding = struct.unpack(">HHHHi", self.read(12))
            if encoding != 0:  # a pseudo-encoding (desktop size...) carries no pixels
                continue
            data = self.read(w * h * step)
            lit += sum(1 for i in range(0, len(data), step) if any(data[i : i + 3]))
        return lit


def test_a_real_rfb_client_sees_the_bios_screen(consoled):
    client = logged_in(consoled)
    status, sock, rest = ws_open(
        consoled["port"], f"/?token={new_token(client)}", cookie=cookie_of(client), timeout=30
    )
    try:
        assert status == 101, consoled["logs"]["proxy"].read_text()
        rfb = Rfb(sock, rest)
        width, height, bpp, name = rfb.handshake()
        assert VM in name and width > 0 and height > 0
        # SeaBIOS prints "Booting from Hard Disk... No bootable device." on a blank disk
        wait_for(
            lambda: rfb.lit_pixels(width, height, bpp) >= 200,
            timeout=30,
            interval=0.5,
            message=f"the {width}x{height} screen to show SeaBIOS (200 lit pixels)",
        )
        # while it is open: the proxy (and the handler and ssh below it) listen on loopback
        # only, the tunnel nowhere at all (ssh -W), and QEMU's VNC on the host's loopback
        tunnels = our_tunnels(consoled["keyfile"])
        assert tunnels, "no ssh tunnel while a console is open"
        ours = set(descendants(consoled["proxy"].pid))
        assert set(tunnels) <= ours
        found = listeners()
        assert [(a, p) for a, p, pids in found if pids & ours] == [("127.0.0.1", consoled["port"])]
        with consoled["app"].app_context():
            host = get_db().execute("SELECT * FROM hosts WHERE name = 'con-lab1'").fetchone()
            display = consoled["app"].extensions["nube"].hypervisor.vnc_display(dict(host), VM)
        # (the lab host's own loopback: QEMU runs in its network namespace)
        on_host = listeners(consoled["netns"])
        assert [a for a, p, _pids in on_host if p == display.port] == ["127.0.0.1"]
    finally:
        sock.close()
    # the tunnel ends with its connection
    wait_for(
        lambda: our_tunnels(consoled["keyfile"]) == [],
        timeout=15,
        interval=0.2,
        message="the ssh tunnel to end with its connection",
    )


def test_used_expired_and_sessionless_links_are_refused(consoled):
    client = logged_in(consoled)
    cookie = cookie_of(client)
    port = consoled["port"]
    used = new_token(client)
    status, sock, _ = ws_open(port, f"/?token={used}", cookie=cookie, timeout=30)
    sock.close()
    assert status == 101
    status, sock, _ = ws_open(port, f"/?token={used}", cookie=cookie)
    sock.close()
    assert status == 403

    expired = new_token(client)
    with consoled["app"].app_context():
        get_db().execute("UPDATE console_tokens SET expires_at = '2000-01-01T00:00:00.000000Z'")
    status, sock, _ = ws_open(port, f"/?token={expired}", cookie=cookie)
    sock.close()
    assert status == 403

    status, sock, _ = ws_open(port, f"/?token={new_token(client)}")  # no session cookie
    sock.close()
    assert status == 403
    status, sock, _ = ws_open(port, "/?token=forged", cookie=cookie)
    sock.close()
    assert status == 403
    log = consoled["logs"]["proxy"].read_text()
    assert "console token already used" in log and "console token expired" in log
    assert used not in log and expired not in log  # tokens never reach the log
    with consoled["app"].app_context():
        actions = [
            row[0]
            for row in get_db().execute("SELECT action FROM audit WHERE target = ?", (f"vm:{VM}",))
        ]
    assert "vm.console.open" in actions and actions.count("vm.console.refused") >= 3


def test_stopping_the_proxy_ends_open_consoles_and_their_tunnels(consoled):
    client = logged_in(consoled)
    status, sock, rest = ws_open(
        consoled["port"], f"/?token={new_token(client)}", cookie=cookie_of(client), timeout=30
    )
    try:
        assert status == 101
        assert Rfb(sock, rest).read(12) == b"RFB 003.008\n"
        assert our_tunnels(consoled["keyfile"])
        proxy = consoled["proxy"]
        running = set(descendants(proxy.pid))
        os.kill(proxy.pid, signal.SIGTERM)
        proxy.wait(timeout=15)
        # the viewer's connection ends...
        sock.settimeout(15)
        frames, ended = Frames(sock), False
        try:
            while True:
                frames.next()  # a close frame, then EOF
        except TimeoutError:
            pass
        except OSError:  # ConnectionError included
            ended = True
        assert ended, "the viewer's connection stayed open after the proxy stopped"
    finally:
        sock.close()
    # ...and no handler process or ssh tunnel outlives the proxy
    wait_for(
        lambda: (
            not [pid for pid in running if _alive(pid)] and not our_tunnels(consoled["keyfile"])
        ),
        timeout=15,
        interval=0.2,
        message="every handler and ssh tunnel to end with the proxy",
    )
    assert not any(port == consoled["port"] for _a, port, _pids in listeners())


def _alive(pid):
    """Whether a process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
