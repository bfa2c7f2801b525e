"""Uploads written straight into the repository: no copy of a many-GB image through /tmp.

Only a logged-in user's image upload, or the API's (whose body its view alone reads, after
the token was checked), may send a large body and stream into images/; every other request
is limited to SMALL_BODY before anything (the CSRF check included) parses it.
"""

import contextlib
import os

from flask import Request, request
from flask_login import current_user

from ..extensions import adapters
from ..services import access

SMALL_BODY = 1024 * 1024  # forms other than the upload never come near this
API_UPLOAD = "api_v1_images.upload"


def upload_allowed():
    """Whether this request is an image upload: the page's, by a user whose role manages
    images (a member's body is refused before it is read: it never fills the repository), or
    the API's (whose token and role are checked before its view reads the body)."""
    if request.endpoint == API_UPLOAD:
        return True
    return (
        request.endpoint == "images.upload"
        and current_user.is_authenticated
        and access.current().may("images.manage")
    )


class RepositoryRequest(Request):
    """A request whose uploaded image streams into a hidden temp file in images/."""

    def _get_file_stream(
        self, total_content_length, content_type, filename=None, content_length=None
    ):
        """Where werkzeug's form parser writes an uploaded file as it arrives."""
        if not upload_allowed():
            return super()._get_file_stream(
                total_content_length, content_type, filename, content_length
            )
        path, handle = adapters().storage.upload_target()
        # every temp file this request made, whatever the parser does next: several parts
        # under one field name, or a body cut short before the form was complete
        self.__dict__.setdefault("nube_uploads", []).append((path, handle))
        return handle


def limit_request_body():
    """Refuse a large body on any request but the image upload, before it is parsed."""
    if not upload_allowed():
        request.max_content_length = SMALL_BODY


def discard_unclaimed_uploads(_exc=None):
    """Delete upload temp files a request did not commit (bad form, error, refused image, a
    second part, a body cut short); a committed one was already moved to its name."""
    for path, handle in request.__dict__.pop("nube_uploads", []):
        handle.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def init_app(app):
    """Use the repository-backed request class, limit bodies, clean up after every request."""
    app.request_class = RepositoryRequest
    # registered before CSRFProtect's hook (which parses the form), so it runs first
    app.before_request(limit_request_body)
    app.teardown_request(discard_unclaimed_uploads)
