"""Who calls the API: a Bearer token (never a session) or the dashboard's own session (with
its CSRF token on every change)."""

import functools

from flask import abort, current_app, g, request
from flask_login import current_user

from ...errors import TokenRefused
from ...services import tokens
from . import problems

PREFIX = "/api/v1/"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def is_api_request():
    """Whether this request is for the versioned API."""
    return request.path.startswith(PREFIX) or request.path == PREFIX.rstrip("/")


def authenticate(csrf):
    """Before any API view: the token's user, or the session's user with a checked CSRF
    token; a problem-details 401 or 403 otherwise. Returns None to go on."""
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            return problems.unauthorized(
                "the Authorization header must be 'Bearer <token>'", "invalid_request"
            )
        try:
            user, token = tokens.authenticate(raw.strip())
        except TokenRefused as error:
            return problems.unauthorized(str(error))
        g.api_token = token
        # the request's user only: nothing is written to a session, no cookie goes back
        current_app.login_manager._update_request_context_with_user(user)  # noqa: SLF001
        return None
    if not current_user.is_authenticated:
        return problems.unauthorized("send an API token: Authorization: Bearer <token>", None)
    if request.method not in SAFE_METHODS:
        csrf.protect()  # a cookie rides along on any cross-site form; the CSRF token does not
    return None


def admin_only(view):
    """Only admins may call the decorated API view (403 for others)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_admin:
            abort(403, description="only admins may do this")
        return view(*args, **kwargs)

    return wrapper


NO_TOKEN_FOR_ACCOUNTS = (
    "API tokens cannot create users or change roles or passwords (an account made with a"
    " token would outlive the token): use the dashboard's Users page"
)


def session_only(view):
    """Refuse the decorated API view to bearer tokens (403): only a logged-in session may
    call it, so a leaked token cannot make itself an account that outlives it."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if token_in_use() is not None:
            abort(403, description=NO_TOKEN_FOR_ACCOUNTS)
        return view(*args, **kwargs)

    return wrapper


def token_in_use():
    """The API token of this request (None for a session or outside a request)."""
    return g.get("api_token")
