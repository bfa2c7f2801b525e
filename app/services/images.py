"""Image use cases: list what is in the repository, upload, build, delete."""

import os

from flask import current_app

from ..adapters.qemu_img import check_upload_name
from ..adapters.storage import check_image_name, file_sha256
from ..db import transaction
from ..errors import Conflict, InvalidInput
from ..extensions import adapters
from ..limits import IMAGE_DESCRIPTION_MAX, IMAGE_DESCRIPTION_MESSAGE
from ..numbers import disk_gib
from ..ops import kinds
from ..ops.launch import launch
from ..ops.request import record
from ..repositories import images as images_repo
from ..repositories import vms as vms_repo
from ..repositories import volumes as volumes_repo
from . import access, validate
from .common import audit, db
from .image_spec import (
    DEFAULT_RELEASE,
    DEFAULT_SIZE,
    build_file_name,
    check_not_reserved,
    check_spec,
)

BUILD_FIELDS = ("name", "release", "size")


def search():
    """Every image file in the repository, with its record and how many VMs use it (of the
    viewer's projects; a member is not told who uploaded it)."""
    conn = db()
    records = images_repo.all_records(conn)
    usage = vms_repo.image_usage(conn, access.visible_projects())
    # members are not told of other users, nor of the addresses images were fetched from
    operator = access.current().may("hosts")
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
                "uploaded_by": record["uploaded_by"] if record and operator else None,
                "vms": usage.get(info.name, 0),
                **_what_it_is(record, operator),
            }
        )
    return result


def _what_it_is(record, operator):
    """An image's OS, checksum and origin from its record (all None for a file found in
    images/ without one)."""
    if record is None:
        return {"os": None, "sha256": None, "source": None, "source_url": None}
    return {
        "os": record["os"],
        "sha256": record["sha256"],
        "source": record["source"],
        "source_url": record["source_url"] if operator else None,
    }


def choices():
    """The images VMs can be created from, by name, and the newest of them (None if none):
    the one an operator most likely means, having just uploaded or built it."""
    found = adapters().storage.list_images()
    newest = max(found, key=lambda info: (info.mtime, info.name), default=None)
    return [info.name for info in found], newest.name if newest else None


def facts():
    """What the VM create form shows of each image: {name: {os, format, virtual_size, disk}},
    disk being the smallest disk (GiB) a VM made from it may have."""
    records = images_repo.all_records(db())
    return {
        info.name: {
            "os": records[info.name]["os"] if info.name in records else None,
            "format": info.format,
            "virtual_size": info.virtual_size,
            "disk": disk_gib(info.virtual_size),
        }
        for info in adapters().storage.list_images()
    }


def _description(value):
    """An upload's description, stripped: text of at most IMAGE_DESCRIPTION_MAX characters."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput("description must be text")
    if len(value.strip()) > IMAGE_DESCRIPTION_MAX:
        raise InvalidInput(IMAGE_DESCRIPTION_MESSAGE)
    return value.strip()


def upload(name, stream, description, actor):
    """Stream an uploaded image into the repository (size-limited); returns its info."""
    access.require("images.manage")
    description = _description(description)
    check_image_name(name)
    check_not_reserved(name)
    check_upload_name(name)
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
    checksum = file_sha256(storage.image_path(name))
    conn = db()
    images_repo.record(
        conn, name, uploaded_by=actor, source="upload", description=description, checksum=checksum
    )
    audit(conn, actor, "image.upload", f"image:{name}", f"{info.format}, {info.actual_size} bytes")
    return info


def delete(name, actor):
    """Delete an image no VM uses."""
    access.require("images.manage")
    check_image_name(name)
    conn = db()
    for users, what in (
        (vms_repo.using_image(conn, name), "VM(s)"),
        (volumes_repo.using_image(conn, name), "volume(s)"),
    ):
        if users:
            shown = ", ".join(users[:5]) + (" …" if len(users) > 5 else "")
            raise Conflict(f"image {name} is used by {len(users)} {what}: {shown}")
    adapters().storage.delete_image(name)
    images_repo.delete(conn, name)
    audit(conn, actor, "image.delete", f"image:{name}")


def info(name):
    """One image's name, format and sizes."""
    image = adapters().storage.image_info(check_image_name(name))
    return {
        "name": image.name,
        "format": image.format,
        "virtual_size": image.virtual_size,
        "actual_size": image.actual_size,
    }


def _check_build(data):
    """Validate buildImage input; returns the image's file name, release and size in bytes."""
    validate.require_dict(data, "image")
    validate.refuse_unknown(data, BUILD_FIELDS, "image")
    name = build_file_name(validate.text(data, "name"))
    release = validate.text(data, "release", required=False, default=DEFAULT_RELEASE)
    size = data.get("size")
    size = DEFAULT_SIZE if size is None or size == "" else size
    return check_spec({"name": name, "release": release, "size": size})


def request_build(data, actor):
    """Validate a build and write its pending operation (refused while images/NAME exists or
    another build of it is active); returns the operation id."""
    access.require("images.manage")
    spec = _check_build(data)
    return record_image_write(kinds.IMAGE_BUILD, spec["name"], actor, spec)


def record_image_write(kind, name, actor, input_data):
    """Write the pending operation of a kind that writes images/NAME (a build, an import):
    refused while that file exists or another operation on the name is active (Busy), both
    checked under one write lock; returns the operation id."""
    storage = adapters().storage
    conn = db()
    with transaction(conn):
        storage.image_path(name)  # inside images/
        op_id = record(conn, kind, name, actor, input_data)  # Busy while one is active
        if os.path.lexists(storage.images_dir / name):
            raise Conflict(f"image {name} already exists")
        return op_id


def build(data, actor, wait):
    """Build a Debian image into images/NAME.qcow2 (operation image.build); returns the
    operation id."""
    access.require("images.manage")
    return launch(request_build(data, actor), wait)
