"""The console proxy: websockify on 127.0.0.1, a token plugin over Nube's database, SSH tunnels.

One process listens; websockify forks a handler process per connection, which redeems the
link's token (single use, unexpired, presented with its user's session cookie), finds the VM's
VNC display through the hypervisor adapter and proxies the websocket to an `ssh -W` tunnel.
"""

import re
import socket
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from itsdangerous import BadSignature
from websockify.token_plugins import BasePlugin
from websockify.websocketproxy import ProxyRequestHandler, WebSocketProxy
from werkzeug.http import parse_cookie

from ..db import get_db
from ..errors import NubeError
from ..extensions import adapters
from ..proxies import client_address
from ..services import console as console_service
from ..services import shared_keys
from ..services import users as users_service
from ..services.console import ConsoleRefused
from . import tunnel as tunnel_module

LISTEN_HOST = "127.0.0.1"  # never a public address: browsers reach it as the dashboard's host
_TOKEN_TEXT = re.compile(r"(token=)[^&\s'\"]*")


def session_user_id(app, cookie_header):
    """The user id of the live dashboard session in a signed session cookie, or None when
    there is none (or it was ended: logout, password change, user removed)."""
    if not cookie_header:
        return None
    serializer = app.session_interface.get_signing_serializer(app)
    if serializer is None:
        return None
    max_age = int(app.permanent_session_lifetime.total_seconds())
    # Cookies do not separate ports: other apps on this host may send a "session" cookie too.
    for value in parse_cookie(cookie_header).getlist(app.config["SESSION_COOKIE_NAME"]):
        try:
            data = serializer.loads(value, max_age=max_age)
        except BadSignature:
            continue
        if isinstance(data, dict) and data.get("_user_id"):
            with app.app_context():
                user = users_service.load(data["_user_id"])
            if user is not None:
                return str(user.id)
    return None


def token_from_path(path):
    """The `token` query argument of a websocket request path, or None."""
    values = parse_qs(urlsplit(path).query).get("token")
    return values[0].strip() if values else None


class ConsoleTokens(BasePlugin):
    """websockify token plugin: a console token from Nube's database → an open VNC tunnel."""

    def __init__(self, app, opener=None):
        super().__init__(app.config["DATABASE"])
        self.app = app
        self.opener = opener  # None: the module's open_tunnel (looked up when called)

    def lookup(self, token, session_user_id=None, remote_addr=None):
        """Redeem the token and return a Tunnel to its VM's VNC server; raises when refused."""
        with self.app.app_context():
            target = console_service.redeem(token, session_user_id, remote_addr)
            shared_keys.sync_known_hosts(
                self.app, get_db()
            )  # host keys another controller recorded
            nube = adapters(self.app)
            opener = self.opener or tunnel_module.open_tunnel
            try:
                tunnel = opener(
                    target,
                    keyfile=str(nube.ssh_key),
                    known_hosts=str(nube.known_hosts),
                    timeout=self.app.config["HOST_TIMEOUT"],
                )
            except NubeError as exc:
                console_service.record_open(target, remote_addr, error=str(exc))
                raise
            console_service.record_open(target, remote_addr)
            return tunnel


class ConsoleHandler(ProxyRequestHandler):
    """One websocket connection: check its token before the upgrade, then proxy to the tunnel."""

    tunnel = None

    def validate_connection(self):
        """Redeem the token (refusing with an HTTP error before the upgrade) and open the tunnel."""
        token = token_from_path(self.path)
        user_id = session_user_id(self.server.app, self.headers.get("Cookie"))
        forwarded = ", ".join(self.headers.get_all("X-Forwarded-For") or ())
        trusted = self.server.app.config["TRUSTED_PROXIES"]
        address = client_address(self.client_address[0], forwarded, trusted)
        try:
            self.tunnel = self.server.token_plugin.lookup(
                token, session_user_id=user_id, remote_addr=address
            )
        except ConsoleRefused as exc:
            self._refuse(403, str(exc))
        except NubeError as exc:  # the host or its tunnel failed
            self._refuse(502, str(exc))

    def _refuse(self, code, reason):
        """Answer the upgrade request with an HTTP error and end this connection."""
        self.send_error(code, reason.splitlines()[0][:200])
        raise self.server.EClose(f"console refused ({code}): {reason}")

    def new_websocket_client(self):
        """Proxy the websocket to the tunnel until either side closes."""
        target = self.tunnel.target
        self.log_message(
            "console of VM %s for %s: VNC %s:%s on host %s",
            target.vm_id,
            target.username,
            target.vnc_address,
            target.vnc_port,
            target.host_name,
        )
        self.request.setsockopt(socket.SOL_TCP, socket.TCP_NODELAY, 1)
        try:
            self.do_proxy(self.tunnel.sock)
        finally:
            self._close_tunnel()

    def finish(self):
        """Close a tunnel the connection left open (an upgrade that failed after the lookup)."""
        self._close_tunnel()
        super().finish()

    def _close_tunnel(self):
        if self.tunnel is not None:
            self.tunnel.close()
            self.tunnel = None

    def log_message(self, format, *args):  # noqa: A002  (the standard library's name)
        """Log like websockify, but never a token (the request path carries it)."""
        super().log_message("%s", _TOKEN_TEXT.sub(r"\1***", format % args))


class ConsoleProxy(WebSocketProxy):
    """websockify's proxy on 127.0.0.1:CONSOLE_PORT with Nube's token plugin and handler."""

    def __init__(self, app, port=None, opener=None, **kwargs):
        self.app = app
        # wss: an operator who serves the dashboard over HTTPS puts certificate and key here.
        kwargs.setdefault("cert", str(Path(app.instance_path) / "console.pem"))
        super().__init__(
            RequestHandlerClass=ConsoleHandler,
            listen_host=LISTEN_HOST,
            listen_port=app.config["CONSOLE_PORT"] if port is None else port,
            token_plugin=ConsoleTokens(app, opener),
            heartbeat=30,
            **kwargs,
        )
