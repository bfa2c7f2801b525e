"""Command-line tools: `flask --app wsgi user create`, `nube init`, `nube ensure-admin`."""

import os
import secrets
import sys

import click
from flask import current_app

from .db import ensure_schema
from .errors import NubeError
from .extensions import adapters
from .ops.recovery import recover
from .services import controller, users

CLI_ACTOR = os.environ.get("NUBE_ACTOR", "cli")  # who the audit log says acted


def _read_password(confirm=True):
    """A password from a prompt, or from stdin's first line when stdin is not a terminal."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=confirm)


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
        users.create("admin", password, "admin", "cli")
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

    app.cli.add_command(user_group)
    app.cli.add_command(nube_group)
