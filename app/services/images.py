"""Image use cases: list what is in the repository, upload, delete."""

import os

from flask import current_app

from ..adapters.storage import check_image_name
from ..errors import InvalidInput
from ..extensions import adapters
from ..repositories import images as images_repo
from ..repositories import vms as vms_repo
from .common import audit, db


def search():
    """Every image file in the repository, with its record and how many VMs use it."""
    conn = db()
    records = images_repo.all_records(conn)
    usage = vms_repo.image_usage(conn)
    result = []
    for info in adapters().storage.list_images():
        record = records.get(info.name)
        result.append(
            {
                "name": info.name,
                "format": info.format,
                "virtual_size": info.virtual_size,
                "actual_size": info.actual_size,
                "mtime": info.mtime,
                "description": record["description"] if record else "",
                "uploaded_by": record["uploaded_by"] if record else None,
                "vms": usage.get(info.name, 0),
            }
        )
    return result


def names():
    """The names of the images VMs can be created from."""
    return [info.name for info in adapters().storage.list_images()]


def upload(name, stream, description, actor):
    """Stream an uploaded image into the repository (size-limited); returns its info."""
    check_image_name(name)
    limit = current_app.config["MAX_UPLOAD_MB"] * 1024 * 1024
    storage = adapters().storage
    path = getattr(stream, "name", None)
    if isinstance(path, str) and os.path.dirname(path) == str(storage.images_dir):
        # the web's form parser already streamed it into images/: check and rename, no copy
        stream.flush()
        if os.fstat(stream.fileno()).st_size > limit:
            raise InvalidInput(f"image is larger than {limit // (1024 * 1024)} MB")
        info = storage.commit_upload(name, path)
    else:
        info = storage.save_upload(name, stream, limit)
    conn = db()
    images_repo.upsert(conn, name, (description or "").strip()[:500], actor)
    audit(conn, actor, "image.upload", f"image:{name}", f"{info.format}, {info.actual_size} bytes")
    return info


def delete(name, actor):
    """Delete an image no VM uses."""
    check_image_name(name)
    conn = db()
    users = vms_repo.using_image(conn, name)
    if users:
        shown = ", ".join(users[:5]) + (" …" if len(users) > 5 else "")
        raise InvalidInput(f"image {name} is used by {len(users)} VM(s): {shown}")
    adapters().storage.delete_image(name)
    images_repo.delete(conn, name)
    audit(conn, actor, "image.delete", f"image:{name}")
