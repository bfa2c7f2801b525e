"""Fetching an image over HTTP(S) without becoming a proxy into the controller's network.

Every hop (the URL, then each redirect, followed here and never by a library) is checked the
same way: http or https only, no credentials in the URL, and the host's addresses resolved once
and refused when loopback, link-local, private, unspecified, multicast, reserved or otherwise
not global, unless IMAGE_IMPORT_ALLOW names them. The connection goes to the address that was
checked (never a second DNS lookup a rebinding server could answer differently), with the
URL's host name kept for the Host header and TLS. The body is streamed into a file under a
size cap (a Content-Length over it fails at once, a body growing past it fails when it does),
hashed with SHA-256 as it comes.
"""

import contextlib
import hashlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from app.errors import InvalidInput, OperationFailed

SCHEMES = {"http": 80, "https": 443}
REDIRECTS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 5
CHUNK = 1 << 20
REPORT_EVERY = 5.0  # seconds between progress lines in the operation's log
USER_AGENT = "Nube-image-import/1"
# seconds a server has for its answer's headers, and for a whole checksums file: a server
# that sends them a byte at a time never trips the per-read timeout, and would hold a worker
ANSWER_DEADLINE = 60.0


class FetchRefused(OperationFailed):
    """A URL or an address an import will not fetch from."""


@dataclass
class Fetched:
    """What a fetch wrote: its size, SHA-256 (hex) and the URL it finally came from."""

    size: int
    sha256: str
    url: str


def check_url(url) -> str:
    """The URL if an import may ask for it (http or https, a host, no credentials), else
    InvalidInput; its addresses are checked when it is fetched."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput("url is required: an http:// or https:// address")
    url = url.strip()
    try:
        parts = urlsplit(url)
        _ = parts.port  # urlsplit checks the port only when it is read
    except ValueError as exc:
        raise InvalidInput(f"url {url!r:.200} is not a valid URL: {exc}") from None
    if parts.scheme.lower() not in SCHEMES:
        shown = f"{parts.scheme}://" if parts.scheme else "no scheme"
        raise InvalidInput(f"url must be http:// or https://, not {shown}")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidInput("url must not carry credentials (user:password@): not sent, not kept")
    if not parts.hostname:
        raise InvalidInput(f"url {url!r:.200} names no host")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise InvalidInput("url must not contain spaces or control characters")
    return url


def refusal(address, allow) -> str | None:
    """Why an import may not connect to this address (None: it may): what kind of address
    it is, unless a network in allow holds it."""
    ip = ipaddress.ip_address(address)
    # an IPv4 address inside an IPv6 one (mapped, 6to4, Teredo's client) is judged as itself
    teredo = getattr(ip, "teredo", None)
    ip = (
        getattr(ip, "ipv4_mapped", None)
        or getattr(ip, "sixtofour", None)
        or (teredo[1] if teredo else None)
        or ip
    )
    if any(ip.version == net.version and ip in net for net in allow):
        return None
    for test, what in (
        ("is_site_local", "a site-local address"),
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_unspecified", "an unspecified address"),
        ("is_multicast", "a multicast address"),
        ("is_private", "a private address"),
        ("is_reserved", "a reserved address"),
    ):
        if getattr(ip, test, False):
            return what
    return None if ip.is_global else "not a public address"


class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to one checked address, the URL's host name in its Host header."""

    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self):
        """Connect to the checked address, never to what the name resolves to now."""
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """The same over TLS: the certificate is checked against the URL's host name."""

    def __init__(self, host, port, address, timeout, context):
        super().__init__(host, port, timeout=timeout, context=context)
        self.address = address

    def connect(self):
        """Connect to the checked address, then TLS with the URL's host name."""
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class ImageFetcher:
    """Fetches http(s) URLs for image imports, checking every hop's scheme and address."""

    def __init__(self, allow=(), timeout=30.0, resolve=socket.getaddrinfo, tls=None):
        self.allow = tuple(allow)
        self.timeout = timeout
        self.resolve = resolve
        self.tls = tls or ssl.create_default_context()

    def address_for(self, host, port) -> str:
        """The address to connect to for host: the first it resolves to that is allowed;
        FetchRefused naming the address and its kind when none is."""
        try:
            found = self.resolve(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise OperationFailed(f"cannot resolve {host}: {exc}") from None
        addresses = list(dict.fromkeys(info[4][0] for info in found))
        reasons = [(address, refusal(address, self.allow)) for address in addresses]
        for address, reason in reasons:
            if reason is None:
                return address
        if not reasons:
            raise OperationFailed(f"{host} resolves to no address")
        address, reason = reasons[0]
        raise FetchRefused(
            f"refusing to fetch from {address} ({reason}; IMAGE_IMPORT_ALLOW does not allow it)"
        )

    def open(self, url, log=lambda message: None):
        """The response to GET url once redirects are followed (each hop checked); the
        caller closes it. OperationFailed for a refused hop or an answer other than 200."""
        for _hop in range(MAX_REDIRECTS + 1):
            response = self._get(url, log)
            if response.status in REDIRECTS and response.getheader("Location"):
                target = urljoin(url, response.getheader("Location"))
                _close(response)
                try:
                    url = check_url(target)
                except InvalidInput as exc:
                    raise FetchRefused(f"refusing a redirect to {target!r:.200}: {exc}") from None
                log(f"redirected to {url}")
                continue
            if response.status != 200:
                _close(response)
                raise OperationFailed(f"{url} answered {response.status} {response.reason}")
            response.url = url
            return response
        raise FetchRefused(f"more than {MAX_REDIRECTS} redirects: stopped at {url}")

    def _get(self, url, log):
        """Send one GET to the address checked for url's host."""
        parts = urlsplit(check_url(url))
        scheme = parts.scheme.lower()
        port = parts.port or SCHEMES[scheme]
        address = self.address_for(parts.hostname, port)
        log(f"GET {url} ({address})")
        if scheme == "https":
            conn = _PinnedHTTPS(parts.hostname, port, address, self.timeout, self.tls)
        else:
            conn = _PinnedHTTP(parts.hostname, port, address, self.timeout)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            with _deadline(conn, ANSWER_DEADLINE):
                conn.request(
                    "GET",
                    path,
                    headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
                )
                response = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise OperationFailed(f"cannot fetch {url}: {exc}") from None
        response.connection = conn  # closed with it (_close)
        return response

    def fetch(self, url, out, max_bytes, *, log, check=lambda: None) -> Fetched:
        """Stream url's body into the open binary file out (at most max_bytes), hashing it;
        check() is called between chunks (it raises to stop); a progress line goes to log
        every REPORT_EVERY seconds."""
        response = self.open(url, log)
        try:
            total = _length(response, max_bytes, response.url)
            return self._stream(response, out, max_bytes, total, log, check)
        finally:
            _close(response)

    def _stream(self, response, out, max_bytes, total, log, check):
        """Copy the body in chunks, under the cap, reporting every REPORT_EVERY seconds."""
        digest = hashlib.sha256()
        done = 0
        reported = time.monotonic()
        while chunk := _read(response, CHUNK):
            done += len(chunk)
            if done > max_bytes:
                raise OperationFailed(
                    f"{response.url} sent more than the cap of {_mib(max_bytes)}"
                    " (MAX_UPLOAD_MB): stopped there"
                )
            digest.update(chunk)
            out.write(chunk)
            check()
            if time.monotonic() - reported >= REPORT_EVERY:
                reported = time.monotonic()
                log(_so_far(done, total))
        if total is not None and done != total:
            raise OperationFailed(f"{response.url} ended after {done} of {total} bytes")
        log(f"fetched {_mib(done)}")
        return Fetched(done, digest.hexdigest(), response.url)

    def fetch_text(self, url, max_bytes, log=lambda message: None) -> str:
        """A small text file (a checksums list) at url, at most max_bytes."""
        response = self.open(url, log)
        try:
            _length(response, max_bytes, response.url)
            with _deadline(response.connection, ANSWER_DEADLINE):
                body = response.read(max_bytes + 1)
        except (OSError, http.client.HTTPException) as exc:
            raise OperationFailed(f"cannot read {url}: {exc}") from None
        finally:
            _close(response)
        if len(body) > max_bytes:
            raise OperationFailed(f"{url} is larger than {max_bytes} bytes: not a checksums file")
        return body.decode("utf-8", errors="replace")


@contextlib.contextmanager
def _deadline(conn, seconds):
    """Shut the connection's socket down if the block still runs after seconds (what it
    waits on then fails at once)."""

    def shut():
        with contextlib.suppress(OSError, AttributeError):
            conn.sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(seconds, shut)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _close(response):
    """Close a response and its connection (no connection is kept for another request)."""
    response.close()
    response.connection.close()


def _length(response, max_bytes, url):
    """The body's announced length (None when not given); over the cap fails at once."""
    header = response.getheader("Content-Length")
    if header is None or not header.strip().isdigit():
        return None
    total = int(header)
    if total > max_bytes:
        raise OperationFailed(
            f"{url} is {_mib(total)}, more than the cap of {_mib(max_bytes)} (MAX_UPLOAD_MB)"
        )
    return total


def _read(response, size):
    """The next chunk of a body; a broken connection is the operation's failure."""
    try:
        return response.read1(size)
    except (OSError, http.client.HTTPException) as exc:
        raise OperationFailed(f"the download broke off: {exc}") from None


def _mib(n):
    """Bytes as MiB for a message."""
    return f"{n / 2**20:.1f} MiB"


def _so_far(done, total):
    """A progress line."""
    if total:
        return f"fetched {_mib(done)} of {_mib(total)} ({100 * done // total}%)"
    return f"fetched {_mib(done)}"
