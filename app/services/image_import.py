"""Importing an image from a URL: the request (input checked by import_spec.py) writes the
image.import operation, whose work is app/services/import_work.py."""

from ..ops import kinds
from ..ops.launch import launch
from . import access, images
from .import_spec import check_import


def request_import(data, actor):
    """Validate an import and write its pending operation (refused while images/NAME exists
    or another operation on that name is active); returns the operation id."""
    access.require("images.manage")
    spec = check_import(data)
    name = spec.pop("name")
    return images.record_image_write(kinds.IMAGE_IMPORT, name, actor, spec)


def start(data, actor, wait):
    """Import an image from an http(s) URL into images/NAME (operation image.import);
    returns the operation id."""
    access.require("images.manage")
    return launch(request_import(data, actor), wait)
