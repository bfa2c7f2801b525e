"""Nube: a small IaaS controller with a web dashboard."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config=None):
    """Build the Flask app: settings, database, adapters, login, blueprints."""
    # imported here, so the `nube` client (app.client) runs where only Python is installed
    from flask import Flask

    from .config import load_settings

    instance_path = os.environ.get("NUBE_INSTANCE_PATH", str(ROOT / "instance"))
    if test_config and "INSTANCE_PATH" in test_config:
        instance_path = test_config["INSTANCE_PATH"]
    app = Flask(
        __name__,
        instance_path=instance_path,
        static_folder=str(ROOT / "static"),
        template_folder="templates",
    )
    os.makedirs(app.instance_path, mode=0o700, exist_ok=True)
    app.config.update(load_settings(app.instance_path, test_config))
    app.config.update(
        DOMAIN_TEMPLATES=str(ROOT / "domain_templates"),
        PLAYS_DIR=str(ROOT / "plays"),
        MAX_CONTENT_LENGTH=app.config["MAX_UPLOAD_MB"] * 1024 * 1024 + 1024 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=app.config["SESSION_COOKIE_SECURE"],
        BOOTSTRAP_SERVE_LOCAL=True,
        WTF_CSRF_TIME_LIMIT=None,
    )

    from . import db, extensions, proxies
    from .ops import queue

    proxies.init_app(app)
    db.init_app(app)
    extensions.init_app(app)
    queue.init_app(app)

    from .services import shared_keys

    shared_keys.init_app(app)  # with CLUSTER_KEY: the keys every controller shares

    from .web import init_web

    init_web(app)

    from .cli import init_cli

    init_cli(app)
    return app
