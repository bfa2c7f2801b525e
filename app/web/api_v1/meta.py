"""/api/v1/ itself: who is calling, where things are, and the documentation page."""

from flask import current_app, render_template
from flask_login import current_user

from .auth import token_in_use
from .common import blueprint
from .schemas import Me

bp = blueprint("meta", __name__, "", "The API itself")


def _me():
    """The calling user and the token in use."""
    token = token_in_use()
    return {
        "id": current_user.id,
        "username": current_user.username,
        "role": current_user.role,
        "token": None
        if token is None
        else {key: token[key] for key in ("id", "name", "expires_at")},
    }


@bp.route("/")
@bp.response(200, Me)
def index():
    """The calling user (the same as /me); the routes are in /api/v1/openapi.json."""
    return _me()


@bp.route("/me")
@bp.response(200, Me)
def me():
    """The calling user, and the token in use (null for a dashboard session)."""
    return _me()


@bp.route("/docs")
@bp.doc(
    security=[],
    responses={
        "200": {"description": "OK", "content": {"text/html": {"schema": {"type": "string"}}}}
    },
)
def docs():
    """The API's reference, rendered from its own OpenAPI document (no CDN, no script)."""
    spec = current_app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()
    return render_template("api/docs.html", spec=spec)
