"""Uploads written straight into the repository: no copy of a many-GB image through /tmp."""

import contextlib
import os

from flask import Request, request

from ..extensions import adapters


class RepositoryRequest(Request):
    """A request whose uploaded files stream into hidden temp files in images/."""

    def _get_file_stream(
        self, total_content_length, content_type, filename=None, content_length=None
    ):
        """Where werkzeug's form parser writes an uploaded file as it arrives."""
        _path, handle = adapters().storage.upload_target()
        return handle


def uploaded_path(stream):
    """The temp file behind an uploaded file's stream, when it is one of ours."""
    return getattr(stream, "name", None)


def discard_unclaimed_uploads(_exc=None):
    """Delete upload temp files a request did not commit (bad form, error, refused image)."""
    if "files" not in request.__dict__:  # the form was never parsed: nothing was written
        return
    for storage in request.files.values():
        path = uploaded_path(storage.stream)
        storage.stream.close()
        if isinstance(path, str) and os.path.basename(path).startswith(".upload-"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def init_app(app):
    """Use the repository-backed request class and clean up after every request."""
    app.request_class = RepositoryRequest
    app.teardown_request(discard_unclaimed_uploads)
