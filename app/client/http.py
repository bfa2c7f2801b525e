"""ApiClient: JSON requests to a controller's /api/v1 with a Bearer token, on urllib alone."""

import http.client
import ipaddress
import json
import urllib.error
import urllib.parse
import urllib.request

from .errors import ApiError, UsageError

API_PREFIX = "/api/v1"
TIMEOUT = 30.0  # seconds for one request
USER_AGENT = "nube-client/0.1.0"


def check_url(url):
    """The controller's base URL (no trailing slash, no /api/v1); refuses all but http(s)."""
    parts = urllib.parse.urlsplit((url or "").strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError("the controller's URL must start with http:// or https:// and name a host")
    if parts.username is not None or parts.password is not None:
        raise UsageError("the controller's URL must not carry a user name or password")
    if parts.query or parts.fragment:
        raise UsageError("the controller's URL must not have a query or a fragment")
    path = parts.path.rstrip("/")
    if path.endswith(API_PREFIX):
        path = path[: -len(API_PREFIX)]
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def is_loopback(hostname):
    """Whether a host name or address is this machine's loopback."""
    if hostname == "localhost" or hostname.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def check_token(token):
    """The token without surrounding space; refuses an empty one or one no header can carry."""
    token = (token or "").strip()
    if not token:
        raise UsageError("no API token given")
    if not token.isascii() or not token.isprintable() or " " in token:
        raise UsageError("the API token has characters no token has (spaces or control characters)")
    return token


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """Follow no redirect: the token goes to the configured URL and nowhere else."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        """Give the 3xx back as an error instead of following it."""
        return None


def _problem_detail(problem, fallback):
    """The problem's detail, with the fields a 422 names (field name to messages)."""
    detail = str(problem.get("detail") or problem.get("title") or fallback)
    errors = problem.get("errors")
    if isinstance(errors, dict) and errors:
        said = []
        for field, messages in errors.items():
            if isinstance(messages, list):
                messages = ", ".join(str(message) for message in messages)
            if str(messages) not in detail:  # the API's detail already says most of them
                said.append(f"{field}: {messages}")
        if said:
            detail = f"{detail} ({'; '.join(said)})"
    return detail


def _api_error(error):
    """An ApiError from an HTTP error answer (problem details when the body is one)."""
    try:
        raw = error.read()
    except (OSError, http.client.HTTPException):
        raw = b""
    finally:
        error.close()
    try:
        problem = json.loads(raw.decode("utf-8")) if raw else {}
    except (ValueError, UnicodeDecodeError):
        problem = {}
    if not isinstance(problem, dict):
        problem = {}
    if 300 <= error.code < 400:
        where = error.headers.get("Location", "another address")
        detail = f"the controller redirects to {where}: log in with that URL instead"
        return ApiError(error.code, detail, problem)
    return ApiError(
        error.code, _problem_detail(problem, error.reason or f"HTTP {error.code}"), problem
    )


class ApiClient:
    """Requests to one controller with one token (never shown in any message or repr)."""

    def __init__(self, url, token, timeout=TIMEOUT, warn=None):
        self.url = check_url(url)
        self._token = check_token(token)
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_RefuseRedirects)
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme == "http" and not is_loopback(parts.hostname) and warn:
            warn(f"{self.url} is plain http: the token crosses the network unencrypted; use https")

    def __repr__(self):
        return f"ApiClient({self.url!r})"

    def _url(self, path, params):
        """API_PREFIX + path on the controller, with the query arguments that have a value."""
        url = f"{self.url}{API_PREFIX}{path}"
        query = {key: value for key, value in (params or {}).items() if value is not None}
        if query:
            url += "?" + urllib.parse.urlencode(query)
        return url

    def _headers(self):
        """The headers of every request."""
        return {
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            "Authorization": f"Bearer {self._token}",
        }

    def request(self, method, path, body=None, params=None):
        """Send one request to API_PREFIX + path; its JSON answer (None when empty), or ApiError."""
        headers = self._headers()
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        return self._send(
            urllib.request.Request(
                self._url(path, params), data=data, headers=headers, method=method
            )
        )

    def upload(self, path, handle, size, params=None):
        """PUT a file of size bytes as the request body, streamed from its open handle."""
        headers = {
            **self._headers(),
            "Content-Type": "application/octet-stream",
            "Content-Length": str(size),
        }
        return self._send(
            urllib.request.Request(
                self._url(path, params), data=handle, headers=headers, method="PUT"
            )
        )

    def _send(self, request):
        """Send a prepared request; its JSON answer (None when empty), or ApiError."""
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            raise _api_error(error) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            reason = getattr(error, "reason", None) or error
            raise ApiError(None, f"cannot reach {self.url}: {reason}") from None
        return self._decode(raw)

    def _decode(self, raw):
        """A successful answer's JSON, None for an empty body."""
        if not raw.strip():
            return None
        try:
            return json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise ApiError(
                None, f"{self.url} did not answer with JSON: is it a Nube controller?"
            ) from None
