"""A tiny HTTP client for benchmarks: cookies, CSRF-aware login, Server-Timing."""

import http.cookiejar
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass


@dataclass
class Response:
    """What a benchmark needs of a response."""

    status: int
    body: bytes
    server_ms: float
    client_ms: float


@dataclass
class RawResponse:
    """Status, ETag and size on the wire (status line, headers and body) of a response."""

    status: int
    etag: str | None
    wire_bytes: int


class Session:
    """A logged-in browser-like session against one server."""

    def __init__(self, base_url):
        self.base_url = base_url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    @staticmethod
    def encode(values):
        """URL-encode form or query values."""
        return urllib.parse.urlencode(values)

    def request(self, path, data=None):
        """One request; returns status, body and timings."""
        body = None if data is None else self.encode(data).encode()
        started = time.perf_counter()
        with self.opener.open(self.base_url + path, data=body, timeout=60) as response:
            payload = response.read()
            timing = response.headers.get("Server-Timing", "")
            status = response.status
        client_ms = (time.perf_counter() - started) * 1000
        match = re.search(r"dur=([0-9.]+)", timing)
        return Response(status, payload, float(match.group(1)) if match else 0.0, client_ms)

    def request_raw(self, path, etag=None):
        """A GET that may answer 304; returns status, ETag and the bytes on the wire."""
        request = urllib.request.Request(self.base_url + path)
        if etag:
            request.add_header("If-None-Match", etag)
        try:
            with self.opener.open(request, timeout=60) as response:
                body, status, headers = response.read(), response.status, response.headers
        except urllib.error.HTTPError as error:  # 304 Not Modified arrives as an "error"
            body, status, headers = error.read(), error.code, error.headers
        head = sum(len(k) + len(v) + 4 for k, v in headers.items()) + 17
        return RawResponse(status, headers.get("ETag"), head + len(body))

    def get(self, path):
        """GET a path."""
        return self.request(path)

    def login(self, username, password):
        """Log in through the real form."""
        page = self.get("/login").body.decode()
        token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page).group(1)
        result = self.request(
            "/login", {"username": username, "password": password, "csrf_token": token}
        )
        if b"Log out" not in result.body:
            raise RuntimeError("benchmark login failed")
