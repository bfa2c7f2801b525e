"""The dashboard: blueprints, login, CSRF, error pages."""

import time

from flask import flash, g, redirect, request, url_for
from flask_bootstrap import Bootstrap5
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect

from ..services import users as user_service
from . import api_v1, errors, helpers, json_body, uploads

login_manager = LoginManager()
csrf = CSRFProtect()
bootstrap = Bootstrap5()

PUBLIC_ENDPOINTS = {"auth.login", "static", "bootstrap.static"}


def init_web(app):
    """Wire the web layer into the app."""
    # before any rule is added: every <int:...> in a URL is bounded
    app.url_map.converters["int"] = helpers.BoundedIntConverter
    json_body.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message_category = "warning"
    login_manager.session_protection = "strong"
    login_manager.user_loader(user_service.load)
    uploads.init_app(app)  # its body limit must run before the CSRF check parses the form
    csrf.init_app(app)
    bootstrap.init_app(app)
    api_v1.init_app(app, csrf)

    from .auth import bp as auth_bp
    from .console import bp as console_bp
    from .hosts import bp as hosts_bp
    from .images import bp as images_bp
    from .live import bp as live_bp
    from .main import bp as main_bp
    from .networks import bp as networks_bp
    from .operations import bp as operations_bp
    from .projects import bp as projects_bp
    from .tokens import bp as tokens_bp
    from .users import bp as users_bp
    from .vms import bp as vms_bp
    from .volumes import bp as volumes_bp

    pages = (
        auth_bp,
        main_bp,
        hosts_bp,
        vms_bp,
        volumes_bp,
        networks_bp,
        images_bp,
        operations_bp,
        projects_bp,
        users_bp,
        tokens_bp,
    )
    for blueprint in pages:
        app.register_blueprint(blueprint)
    app.register_blueprint(live_bp)
    app.register_blueprint(console_bp)

    @app.before_request
    def start_timer():
        """Note when the request started, for the Server-Timing header."""
        g.request_started = time.perf_counter()

    @app.before_request
    def require_login():
        """Every page but the login page and static files needs a logged-in user; the API
        takes a token instead (or a session with its CSRF token)."""
        if api_v1.auth.is_api_request() and request.endpoint is not None:
            return api_v1.before_request(csrf, request.endpoint)
        if request.endpoint in PUBLIC_ENDPOINTS or current_user.is_authenticated:
            return None
        if request.endpoint is None:
            return None  # unknown URL: let it 404 rather than reveal the login page
        if request.path.startswith(("/api/", "/live/")):
            return {"error": "login required"}, 401  # a poller wants JSON, not the login page
        if request.method in ("GET", "HEAD"):
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        # an action sent from a page whose session ended: nothing is done, and after logging
        # in the user is back on that page (never on the POST-only URL) to click again
        flash("Your session ended, so nothing was done: log in, then try again.", "warning")
        return redirect(url_for("auth.login", next=helpers.same_site_page(request.referrer)))

    @app.after_request
    def security_headers(response):
        """Headers a dashboard that controls machines should always send."""
        started = g.get("request_started")
        if started is not None:  # lets operators (and `make bench`) see the server's own time
            response.headers["Server-Timing"] = (
                f"app;dur={(time.perf_counter() - started) * 1000:.2f}"
            )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline';"
            " connect-src 'self'; frame-ancestors 'none'",
        )
        return response

    errors.init_app(app)
    helpers.init_app(app)
