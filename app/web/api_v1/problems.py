"""Errors of the HTTP API as problem details (RFC 9457), with the dashboard's messages."""

from http import HTTPStatus

from flask import jsonify
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from ...errors import (
    Busy,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    NubeError,
    TokenRefused,
)

MEDIA_TYPE = "application/problem+json"
# a body over the request limit (an image over MAX_UPLOAD_MB): the page says the same
TOO_LARGE = "The upload is larger than this controller accepts."


def problem(status, detail, headers=None, **extra):
    """A problem-details response: type, title, status, detail and any extension members."""
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extra,
    }
    response = jsonify(body)
    response.status_code = status
    response.mimetype = MEDIA_TYPE
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def unauthorized(detail, error="invalid_token"):
    """401 with the challenge a Bearer client expects (RFC 6750: no error code when the
    request carried no credentials at all)."""
    challenge = 'Bearer realm="nube"'
    if error:
        challenge += f', error="{error}", error_description="{detail}"'
    return problem(401, detail, {"WWW-Authenticate": challenge})


def from_nube_error(error):
    """The status a Nube error means over HTTP, with its message as the detail."""
    if isinstance(error, TokenRefused):
        return unauthorized(str(error))
    if isinstance(error, Busy):
        return problem(409, str(error), operation_id=error.operation_id)
    if isinstance(error, Conflict):
        return problem(409, str(error))
    if isinstance(error, NotFound):
        return problem(404, str(error))
    if isinstance(error, Forbidden):
        return problem(403, str(error))
    if isinstance(error, InvalidInput):
        return problem(422, str(error))
    return problem(503, str(error))  # a host or the hypervisor did not answer


def _said(errors):
    """Every message of a webargs error tree, in order (the same words the services use)."""
    if isinstance(errors, dict):
        return [message for value in errors.values() for message in _said(value)]
    if isinstance(errors, list | tuple):
        return [message for value in errors for message in _said(value)]
    return [str(errors)]


def from_http_exception(error):
    """An HTTP error (webargs' schema errors among them) as problem details."""
    if isinstance(error, CSRFError):
        return problem(403, f"{error.description} Send the page's CSRF token in X-CSRFToken.")
    data = getattr(error, "data", None) or {}
    messages = data.get("messages")
    if error.code == 422 and messages:
        # webargs keys its errors by where they were: a query argument is a bad request,
        # a body field is well-formed JSON that is wrong
        if set(messages) - {"json"}:
            found = {key: value for where in messages.values() for key, value in where.items()}
            return problem(400, f"bad query argument: {'; '.join(_said(found))}", errors=found)
        said = "; ".join(_said(messages["json"]))
        return problem(422, f"the request body is not valid: {said}", errors=messages["json"])
    if error.code == 413:
        return problem(413, TOO_LARGE)
    detail = data.get("message") or error.description or HTTPStatus(error.code).phrase
    return problem(error.code or 500, detail)


# Flask prefers an app handler for a status code over a blueprint's handler for a class, so
# the codes the HTML pages handle are registered here by code too.
CODES = (400, 401, 403, 404, 405, 409, 413, 422, 500)


def register(blueprint):
    """Answer every error a blueprint's views raise with problem details."""
    blueprint.register_error_handler(NubeError, from_nube_error)
    blueprint.register_error_handler(HTTPException, from_http_exception)
    for code in CODES:
        blueprint.register_error_handler(code, from_http_exception)
