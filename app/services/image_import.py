"""Importing an image from a URL: the request (input checked by import_spec.py) writes the
image.import operation, whose work is app/services/import_work.py."""

import os

from ..db import transaction
from ..errors import Conflict
from ..extensions import adapters
from ..ops import kinds
from ..ops.launch import launch
from ..ops.request import record
from . import access
from .common import db
from .import_spec import check_import


def request_import(data, actor):
    """Validate an import and write its pending operation (refused while images/NAME exists
    or another operation on that name is active); returns the operation id."""
    access.require("images.manage")
    spec = check_import(data)
    name = spec.pop("name")
    storage = adapters().storage
    conn = db()
    with transaction(conn):  # check and insert under one write lock: one import per name
        storage.image_path(name)  # inside images/
        op_id = record(conn, kinds.IMAGE_IMPORT, name, actor, spec)  # Busy while one is active
        if os.path.lexists(storage.images_dir / name):
            raise Conflict(f"image {name} already exists")
        return op_id


def start(data, actor, wait):
    """Import an image from an http(s) URL into images/NAME (operation image.import);
    returns the operation id."""
    access.require("images.manage")
    return launch(request_import(data, actor), wait)
