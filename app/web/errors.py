"""Error pages in the dashboard's style, and the mapping of Nube errors to HTTP."""

from flask import render_template, request
from flask_wtf.csrf import CSRFError

from ..errors import Forbidden, NotFound
from .api_v1 import auth as api_auth
from .api_v1 import problems


def init_app(app):
    """Register the error handlers."""

    @app.errorhandler(403)
    @app.errorhandler(Forbidden)
    def forbidden(error):
        """A page the user's role may not see, or an action it may not take."""
        message = (
            str(error) if isinstance(error, Forbidden) else "Your role does not allow this page."
        )
        return render_template(
            "errors/error.html", code=403, title="Forbidden", message=message
        ), 403

    @app.errorhandler(404)
    @app.errorhandler(NotFound)
    def not_found(error):
        """A page, host, VM or operation that does not exist."""
        message = str(error) if isinstance(error, NotFound) else "There is no such page."
        if api_auth.is_api_request():
            return problems.problem(404, "there is no such route in this API")
        return render_template(
            "errors/error.html", code=404, title="Not found", message=message
        ), 404

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        """A form posted without a valid CSRF token."""
        return render_template(
            "errors/error.html",
            code=400,
            title="Form expired",
            message=f"{error.description} Reload the page and try again.",
        ), 400

    @app.errorhandler(413)
    def too_large(_error):
        """An upload over MAX_UPLOAD_MB."""
        return render_template(
            "errors/error.html",
            code=413,
            title="Too large",
            message=problems.TOO_LARGE,
        ), 413

    @app.errorhandler(405)
    def not_allowed(error):
        """A method a route does not take."""
        if api_auth.is_api_request():
            return problems.problem(
                405,
                "this route does not take " + request.method,
                headers={"Allow": ", ".join(error.valid_methods or ())},
            )
        return render_template(
            "errors/error.html", code=405, title="Not allowed", message=str(error.description)
        ), 405

    @app.errorhandler(500)
    def server_error(_error):
        """A bug; the details are in the server log, never on the page."""
        if api_auth.is_api_request():
            return problems.problem(500, "something went wrong on the controller")
        return render_template(
            "errors/error.html",
            code=500,
            title="Server error",
            message="Something went wrong on the controller.",
        ), 500
