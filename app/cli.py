"""Command-line tools: `flask --app wsgi user create`, `nube init`, `nube ensure-admin`,
`nube image build`."""

import contextlib
import os
import secrets
import signal
import sys
import threading

import click
from flask import current_app

from .db import ensure_schema
from .errors import NubeError, OperationFailed
from .extensions import adapters
from .ops.launch import launch
from .ops.recovery import recover
from .services import controller, images, operations, users

CLI_ACTOR = os.environ.get("NUBE_ACTOR", "cli")  # who the audit log says acted


def _read_password(confirm=True):
    """A password from a prompt, or from stdin's first line when stdin is not a terminal."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=confirm)


class _LogFollower(threading.Thread):
    """Prints an operation's log as it grows (the operation runs in this process's main
    thread) and, when asked from a Ctrl-C, requests its cancel on its own connection."""

    def __init__(self, app, op_id):
        super().__init__(daemon=True, name=f"follow-{op_id}")
        self.app, self.op_id, self.after = app, op_id, 0
        self.stopped = threading.Event()
        self.cancel = threading.Event()

    def run(self):
        """Print new lines every half second until stopped, then the last ones."""
        with self.app.app_context():
            while not self.stopped.wait(0.5):
                self._print_new()
                if self.cancel.is_set():
                    self.cancel.clear()
                    with contextlib.suppress(NubeError):  # it may have ended meanwhile
                        operations.cancel(self.op_id, CLI_ACTOR)
            self._print_new()

    def _print_new(self):
        for line in operations.log(self.op_id, self.after):
            click.echo(line["message"], err=line["level"] == "error")
            self.after = line["id"]

    def interrupt(self, _signum, _frame):
        """Ctrl-C: cancel the operation (its undo cleans up); a second one stops at once."""
        click.echo("canceling (Ctrl-C again to quit at once)", err=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        self.cancel.set()


def _build_image(data):
    """Run an image build here, printing its log live; returns the image's info."""
    app = current_app._get_current_object()
    op_id = images.request_build(data, CLI_ACTOR)
    follower = _LogFollower(app, op_id)
    follower.start()
    main = threading.current_thread() is threading.main_thread()  # where signals go
    previous = signal.signal(signal.SIGINT, follower.interrupt) if main else None
    try:
        launch(op_id, wait=True)
    except OperationFailed as error:
        raise NubeError(error.summary) from None  # the log was printed as it came
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
        follower.stopped.set()
        follower.join()
    return images.info(operations.get(op_id)["target_id"])


def init_cli(app):
    """Register the command groups."""
    user_group = click.Group("user", help="Manage Nube's users.")
    nube_group = click.Group("nube", help="Controller tasks.")

    @user_group.command("create")
    @click.argument("name")
    @click.option("--role", type=click.Choice(users.ROLES), default="operator", show_default=True)
    def create_user(name, role):
        """Create a user; the password comes from a prompt or stdin."""
        try:
            users.create(name, _read_password(), role, "cli")
        except NubeError as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"user {name} created ({role})")

    @user_group.command("password")
    @click.argument("name")
    def set_password(name):
        """Reset a user's password (prompt or stdin)."""
        match = [u for u in users.all_users() if u.username.lower() == name.lower()]
        if not match:
            raise click.ClickException(f"no user {name}")
        try:
            users.reset_password(match[0].id, _read_password(), "cli")
        except NubeError as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"password of {name} changed")

    @nube_group.command("ensure-admin")
    def ensure_admin():
        """Create user admin when there is no user (NUBE_ADMIN_PASSWORD or a generated one)."""
        if users.count():
            return
        password = os.environ.get("NUBE_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        try:
            users.create("admin", password, "admin", "cli")
        except NubeError as error:  # NUBE_ADMIN_PASSWORD breaks the rule every path keeps
            raise click.ClickException(f"NUBE_ADMIN_PASSWORD: {error}") from None
        if os.environ.get("NUBE_ADMIN_PASSWORD"):
            click.echo("created user admin with the password from NUBE_ADMIN_PASSWORD")
        else:
            click.echo(f"created user admin with password: {password}  (shown once: change it)")

    @nube_group.command("init")
    def init_controller():
        """Initialise the controller (database, repository, iaas_init.yaml)."""
        try:
            ensure_schema(current_app.config["DATABASE"])
            controller.init(CLI_ACTOR, wait=True)
        except NubeError as error:
            # The server still starts; the overview page shows the failed operation.
            click.echo(f"controller initialisation failed: {error}", err=True)
            sys.exit(1)
        click.echo(f"controller ready (repository {current_app.config['REPOSITORY']})")

    @nube_group.command("recover")
    def recover_operations():
        """Mark operations left running by dead workers as interrupted."""
        app = current_app._get_current_object()
        count = recover(app)
        click.echo(f"{count} interrupted operation(s) recovered")
        for name in adapters(app).storage.sweep_partials():
            click.echo(f"removed a day-old partial file left by a dead process: {name}")

    image_group = click.Group("image", help="Base images.")
    nube_group.add_command(image_group)

    @image_group.command("build")
    @click.argument("name")
    @click.option("--release", default=images.DEFAULT_RELEASE, show_default=True)
    @click.option(
        "--size",
        default=images.DEFAULT_SIZE,
        show_default=True,
        help="Disk size: bytes, or a number with K, M, G or T.",
    )
    def build_image(name, release, size):
        """Build a Debian guest image into images/NAME.qcow2 (about two minutes)."""
        try:
            info = _build_image({"name": name, "release": release, "size": size})
        except NubeError as error:
            raise click.ClickException(str(error)) from None
        click.echo(
            f"image {info['name']} built: {info['format']}, {info['actual_size'] >> 20} MiB"
            f" ({info['virtual_size'] >> 30} GiB disk)"
        )

    app.cli.add_command(user_group)
    app.cli.add_command(nube_group)
