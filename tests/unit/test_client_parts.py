"""The `nube` client's parts on their own, with no controller: the settings file, URL and token
checks, exit codes, output, the polling of an operation, HTTP errors (from a stub server on
loopback), and its imports (the standard library only)."""

import ast
import io
import json
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from app.client import config, follow, output
from app.client.errors import ApiError, UsageError, exit_code_for
from app.client.http import ApiClient, check_url

CLIENT_DIR = Path(__file__).resolve().parents[2] / "app" / "client"


def test_settings_are_written_atomically_as_0600_and_read_back(tmp_path):
    path = tmp_path / "a" / "config.json"
    config.save(path, {"url": "https://nube.example.org", "token": "nube_secret"})
    config.save(path, {"url": "https://nube.example.org", "token": "nube_other"})
    assert path.stat().st_mode & 0o777 == 0o600
    assert config.load(path)["token"] == "nube_other"
    assert sorted(p.name for p in path.parent.iterdir()) == ["config.json"]
    assert config.load(tmp_path / "missing.json") == {}


def test_settings_open_to_others_are_refused(tmp_path):
    path = tmp_path / "config.json"
    config.save(path, {"url": "https://x.example.org", "token": "nube_t"})
    path.chmod(0o644)
    with pytest.raises(UsageError, match="chmod 600"):
        config.load(path)


def test_settings_path_and_overrides(tmp_path):
    assert config.default_path({"XDG_CONFIG_HOME": "/cfg"}) == Path("/cfg/nube/config.json")
    assert config.default_path({"XDG_CONFIG_HOME": "relative"}).parts[-3:] == (
        ".config", "nube", "config.json",
    )  # fmt: skip
    path = tmp_path / "config.json"
    config.save(path, {"url": "https://a.example.org", "token": "nube_saved"})
    assert config.connection(path, environ={}) == ("https://a.example.org", "nube_saved")
    env = {"NUBE_URL": "https://b.example.org", "NUBE_TOKEN": "nube_env"}
    assert config.connection(path, environ=env) == ("https://b.example.org", "nube_env")
    # the saved token never goes to another URL than the one it was saved for
    assert config.connection(path, url="https://c.example.org", environ={})[1] is None


def test_urls_are_checked_and_plain_http_off_loopback_warned_about():
    assert check_url("https://nube.example.org/api/v1/") == "https://nube.example.org"
    for bad in ("ftp://example.org", "file:///etc/passwd", "nube.example.org", "http://u:p@h"):
        with pytest.raises(UsageError):
            check_url(bad)
    warnings = []
    ApiClient("http://192.0.2.10:5000", "nube_t", warn=warnings.append)
    ApiClient("http://127.0.0.1:5000", "nube_t", warn=warnings.append)
    ApiClient("http://[::1]:5000", "nube_t", warn=warnings.append)
    ApiClient("https://192.0.2.10", "nube_t", warn=warnings.append)
    assert len(warnings) == 1 and "192.0.2.10" in warnings[0]
    assert "nube_t" not in repr(ApiClient("https://h.example.org", "nube_t"))


def test_exit_codes_of_http_statuses():
    codes = {s: exit_code_for(s) for s in (400, 401, 403, 404, 409, 422, 429, 500, 503, None)}
    assert codes == {
        400: 3,
        401: 4,
        403: 4,
        404: 5,
        409: 6,
        422: 3,
        429: 3,
        500: 7,
        503: 7,
        None: 7,
    }


def test_tables_align_their_columns_and_json_parses():
    rows = [{"id": "web1", "mem": 1024, "state": "running", "task": None},
            {"id": "a", "mem": 64, "state": "stop\x1b[31mped", "task": "starting"}]  # fmt: skip
    out = io.StringIO()
    output.table(rows, [("id", "ID"), ("mem", "MEM"), ("state", "STATE"), ("task", "TASK")], out)
    lines = out.getvalue().splitlines()
    assert lines == [
        "ID     MEM  STATE    TASK",
        "web1  1024  running  -",
        "a       64  stopped  starting",
    ]
    out = io.StringIO()
    output.as_json(rows, out)
    assert json.loads(out.getvalue()) == rows
    out = io.StringIO()
    output.record({"id": "web1", "ssh_keys": ["k1", "k2"], "up": True}, out)
    assert out.getvalue() == "id:       web1\nssh_keys: k1\n          k2\nup:       yes\n"


# What a controller (or whatever answers in its place) could send to drive a terminal or hide a
# word: a window title (OSC), a screen clear (CSI), a C1 CSI, a bell, a right-to-left override,
# a zero-width space, a line separator, a private-use and an unassigned code point.
HOSTILE = "a\x1b]0;pwned\x07b\x1b[2Jc\x9b31md\x07e\u202ef\u200bg\u2028h\ue000i\U000e0000j"
INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\ue000\U000e0000]")


def test_what_the_controller_says_is_cleaned_before_any_terminal():
    assert output.clean(HOSTILE + "\n\tk") == "abcdefghij\n\tk"
    assert output.cell(HOSTILE) == "abcdefghij"
    out = io.StringIO()
    output.record({HOSTILE: HOSTILE, "tags": {HOSTILE: HOSTILE}}, out)
    assert out.getvalue() == "abcdefghij: abcdefghij\ntags:       abcdefghij=abcdefghij\n"
    out = io.StringIO()
    output.table([{"id": HOSTILE}], [("id", "ID")], out)
    assert out.getvalue() == "ID\nabcdefghij\n"
    out = io.StringIO()
    terminal = output.Terminal(out)
    print(HOSTILE, "\u00a0x", file=terminal, flush=True)  # a no-break space reads as a space
    assert out.getvalue() == "abcdefghij  x\n"
    assert not INVISIBLE.search(output.log_line({"ts": "T1", "message": HOSTILE}))


class FakeApi:
    """Answers GET /operations/N from a script of answers (or ApiErrors), recording `after`."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.afters = []

    def request(self, method, path, body=None, params=None):
        self.afters.append(params["after"])
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def line(number):
    """A log line with an id."""
    return {
        "id": number,
        "ts": f"2026-01-01T10:00:0{number}",
        "level": "info",
        "message": f"m{number}",
    }


def test_following_polls_after_the_last_line_with_a_backoff():
    api = FakeApi(
        [
            {"status": "running", "log": [line(1)], "more": False},
            {"status": "running", "log": [], "more": False},
            ApiError(503, "restarting"),
            {"status": "running", "log": [], "more": False},
            {"status": "running", "log": [line(2)], "more": True},
            {"status": "succeeded", "log": [line(3)], "more": False},
            {"status": "succeeded", "log": [], "more": False},
        ]
    )
    seen, slept = [], []
    operation = follow.follow(api, 7, seen.append, sleep=slept.append)
    assert operation["status"] == "succeeded"
    assert [entry["message"] for entry in seen] == ["m1", "m2", "m3"]
    assert api.afters == [0, 1, 1, 1, 1, 2, 3]
    assert slept[0] == follow.FIRST_DELAY and slept[1] > slept[0] and slept[2] > slept[1]
    done = FakeApi([{"status": "failed", "log": [line(4)], "more": False, "done": True}])
    assert follow.follow(done, 7, seen.append, sleep=slept.append)["status"] == "failed"
    assert done.afters == [0] and seen[-1]["message"] == "m4"
    with pytest.raises(ApiError):
        follow.follow(
            FakeApi([ApiError(404, "no such operation")]), 7, seen.append, sleep=slept.append
        )


def test_http_errors_become_api_errors_and_redirects_are_not_followed():
    answers = {
        "/api/v1/conflict": (409, "application/problem+json", {"detail": "busy: VM web1"}),
        "/api/v1/bad": (
            422,
            "application/problem+json",
            {"detail": "wrong", "errors": {"mem": ["too small"]}},
        ),  # fmt: skip
        "/api/v1/broken": (500, "text/html", "<h1>oops</h1>"),
        "/api/v1/moved": (302, "text/plain", ""),
        "/api/v1/html": (200, "text/html", "<html>"),
    }
    seen_headers = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen_headers.append(self.headers.get("Authorization"))
            status, kind, body = answers[self.path]
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        api = ApiClient(f"http://127.0.0.1:{server.server_port}", "nube_t0ken")
        raised = {}
        for path in ("/conflict", "/bad", "/broken", "/moved", "/html"):
            with pytest.raises(ApiError) as error:
                api.request("GET", path)
            raised[path] = error.value
    finally:
        server.shutdown()
        server.server_close()
    assert (raised["/conflict"].exit_code, raised["/conflict"].detail) == (6, "busy: VM web1")
    assert raised["/bad"].exit_code == 3 and "mem: too small" in raised["/bad"].detail
    assert raised["/broken"].exit_code == 7 and raised["/broken"].status == 500
    assert raised["/moved"].exit_code == 7 and "redirects" in raised["/moved"].detail
    assert raised["/html"].exit_code == 7
    assert seen_headers == ["Bearer nube_t0ken"] * 5  # the redirect was not followed


def test_the_client_imports_only_the_standard_library():
    for module in CLIENT_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in sys.stdlib_module_names, f"{module.name}: {name}"


# Run in a fresh interpreter: every import outside the standard library fails, and `app` is an
# empty package (its __init__ builds the Flask app), so app.client must stand on its own.
STDLIB_ONLY = """
import sys, types

class Refuse:
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top != "app" and top not in sys.stdlib_module_names:
            raise ModuleNotFoundError(f"{name} is not in the standard library")

sys.meta_path.insert(0, Refuse())
package = types.ModuleType("app")
package.__path__ = [sys.argv[1]]
sys.modules["app"] = package
from app.client.main import main
sys.exit(main(["vm", "list"]))
"""


def test_the_client_runs_on_the_standard_library_alone(tmp_path):
    done = subprocess.run(
        [sys.executable, "-I", "-c", STDLIB_ONLY, str(CLIENT_DIR.parent)],
        env={"XDG_CONFIG_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr  # a usage error: no URL configured
    assert "nube login" in done.stderr


def test_a_token_piped_into_login_is_read_without_a_warning(tmp_path):
    token = "nube_" + "A" * 43
    result = subprocess.run(
        [sys.executable, "-m", "app.client.main", "--config", str(tmp_path / "c.json")]
        + ["login", "http://127.0.0.1:9"],
        input=token + "\n",
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=60,
        check=False,
    )
    assert "Warning" not in result.stderr and "getpass" not in result.stderr.lower()
    assert result.returncode == 7, result.stderr  # the token was read; the controller is not there
