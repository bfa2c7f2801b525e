"""Browser tier: a real Nube (gunicorn, queue consumer, console proxy) and headless Chromium."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.processes import ROOT, Consumer, Server, free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Untracked during tests, so a clone stays clean after `make test`; `make screenshots` points
# this at tests/screenshots to refresh the README's pictures on purpose.
SCREENSHOTS = Path(os.environ.get("NUBE_SCREENSHOTS") or ROOT / "build" / "screenshots")
ADMIN = ("admin", "admin-browser-pw")
OPERATOR = ("oper", "oper-browser-pw")


def flask(env, *args, stdin=None):
    """Run a `flask --app wsgi` command with the server's environment."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "flask"), "--app", "wsgi", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        text=True,
        capture_output=True,
        check=True,
    )


@pytest.fixture(scope="module")
def nube_settings():
    """NUBE_* settings a test module adds to the server's environment (override it there)."""
    return {}


@pytest.fixture(scope="module")
def nube(lab_hosts, nube_settings):
    """Nube as `make run` starts it, on a temp instance and repository, stopped by pid."""
    if not Path(CHROMIUM).exists():
        reason = "the browser tier needs Debian's chromium (make test installs it)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    top = Path(tempfile.mkdtemp(prefix="nube-browser-"))
    top.chmod(0o755)  # QEMU must traverse every folder above the disks
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "NUBE_INSTANCE_PATH": str(top / "instance"),
        "NUBE_DATABASE": str(top / "nube.sqlite"),
        "NUBE_REPOSITORY": str(top / "export" / "iaas"),
        "NUBE_QUEUE": "sqlite",
        "NUBE_EXPORT": "none",
        "NUBE_STOP_TIMEOUT": "3",
        "NUBE_MONITOR_INTERVAL": "5",
        "NUBE_CONSOLE_PORT": str(free_port()),
        **nube_settings,
    }
    flask(env, "nube", "init")
    flask(env, "user", "create", ADMIN[0], "--role", "admin", stdin=ADMIN[1] + "\n")
    flask(env, "user", "create", OPERATOR[0], "--role", "operator", stdin=OPERATOR[1] + "\n")
    logs = top / "logs"
    logs.mkdir()
    consumer = Consumer(env, workers=4, periodic=True, log=logs / "consumer.log")
    server = Server(env, workers=2, threads=4, log=open(logs / "gunicorn.log", "ab"))  # noqa: SIM115
    console = subprocess.Popen(
        [sys.executable, "-m", "app.console"],
        cwd=ROOT,
        env=env,
        stdout=open(logs / "console.log", "ab"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )
    try:
        yield {"url": server.url, "env": env, "top": top, "hosts": lab_hosts}
    finally:
        console.terminate()
        console.wait(timeout=20)
        server.stop()
        consumer.stop()
        # leave the lab hosts as we found them: remove whatever the browser registered
        subprocess.run(
            [
                sys.executable,
                "-c",
                "from app import core\nfor h in core.listHosts(): core.removeHost(h['id'])",
            ],
            cwd=ROOT,
            env=env,
            check=False,
        )
        subprocess.run(["rm", "-rf", str(top)], check=False)


@pytest.fixture(scope="module")
def chromium():
    """Headless Chromium from Debian's package, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, nube):
    """A fresh browser context (its own cookies) on the Nube server."""
    context = chromium.new_context(base_url=nube["url"], viewport={"width": 1280, "height": 860})
    context.set_default_timeout(30_000)
    tab = context.new_page()
    errors = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert errors == [], f"JavaScript errors: {errors}"


def script_errors(tab):
    """A list that collects, from now on, the tab's uncaught script errors (rejected promises
    too) and what its scripts report with console.error."""
    errors = []

    def console(message):
        if message.type == "error":
            errors.append(f"console: {message.text} ({message.location.get('url')})")

    tab.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    tab.on("console", console)
    return errors


def login(page, user, password):
    """Log in through the form."""
    page.goto("/login")
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("#submit")


def screenshot(page, name):
    """Save a screenshot of the whole page for the README."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def add_lab_host(page, lab, before_submit=None, name="lab1"):
    """Fill in Add host for a lab host (bind mount, no guest network) and submit it."""
    page.goto("/hosts/new")
    page.fill("#address", lab["address"])
    page.fill("#name", name)
    page.fill("#user", lab["user"])
    page.fill("#password", lab["password"])
    page.select_option("#share", "bind")
    page.fill("#network", "none")
    page.fill("#data_address", lab["data_address"])  # migrations go over the lab's underlay
    if before_submit:
        before_submit()
    page.click("#submit")
