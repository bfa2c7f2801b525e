"""/api/v1/tokens: list and revoke API tokens (created on the dashboard only)."""

from flask_login import current_user

from ...services import tokens
from .common import Window, blueprint, filtered
from .schemas import ListArgs, Token, page_of

bp = blueprint("tokens", __name__, "/tokens", "API tokens: admins see everyone's")
TokenPage = page_of(Token, "TokenPage")


@bp.route("")
@bp.arguments(ListArgs, location="query")
@bp.response(200, TokenPage)
def index(args):
    """The tokens the caller may see: an admin's list has everyone's."""
    window = Window(args)
    items, total = filtered(
        lambda: tokens.page(current_user, window.query, window.per_page, window.offset)
    )
    return window.answer(items, total)


@bp.route("/<int:token_id>", methods=["DELETE"])
@bp.response(204)
def revoke(token_id):
    """Revoke a token at once (admins any, others their own)."""
    tokens.revoke(token_id, current_user)
    return ""
