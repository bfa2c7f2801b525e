"""Routes of the tokens blueprint: list, create (shown once) and revoke API tokens."""

from flask import Blueprint, current_app, flash, make_response, redirect, render_template, url_for
from flask_login import current_user

from ...errors import InvalidInput, NubeError
from ...services import tokens, users
from ..helpers import Page, actor, flash_error
from .forms import RevokeForm, TokenForm

bp = Blueprint("tokens", __name__, url_prefix="/tokens")


@bp.route("/", methods=["GET", "POST"])
def index():
    """The tokens the viewer may see, filtered and paged, and the form to create one."""
    # A new token is rendered straight into this answer, never redirected or flashed: the
    # secret must not travel in the session cookie. No answer of this page is cached.
    form = TokenForm()
    created = None
    if form.validate_on_submit():
        try:
            users.verify_password(current_user.id, form.password.data, actor(), "token.create")
            created = tokens.create(current_user, form.name.data, form.expires_at(), actor())
        except NubeError as error:
            flash_error(error)  # the message only: no secret exists yet
        else:
            form = TokenForm(formdata=None)  # an empty form for the next token
    page = Page(current_app.config["PAGE_SIZE"], None, ())
    rows = []
    try:
        rows, page.total = tokens.page(current_user, page.query, page.per_page, page.offset)
    except NubeError as error:
        page.error = str(error)
    response = make_response(
        render_template(
            "tokens/index.html",
            tokens=rows,
            page=page,
            form=form,
            created=created,
        )
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/<int:token_id>/revoke", methods=["POST"])
def revoke(token_id):
    """Revoke a token once its box is ticked; someone else's is a 404 (the service's)."""
    form = RevokeForm()
    if not form.validate_on_submit():
        flash("Tick the box next to Revoke to confirm.", "warning")
        return redirect(url_for("tokens.index"))
    try:
        token = tokens.revoke(token_id, current_user)
    except InvalidInput as error:  # already revoked
        flash_error(error)
    else:
        flash(f"Token {token['name']} ({token['prefix']}…) revoked.", "success")
    return redirect(url_for("tokens.index"))
