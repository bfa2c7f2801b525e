"""What an image import may be asked for (name, url, sha256 or checksums_url, os), checked on
input and again where the worker uses it; and a checksums file read for one file's SHA-256."""

import re

from ..adapters.image_fetch import check_url
from ..adapters.qemu_img import check_upload_name
from ..adapters.storage import check_image_name
from ..errors import InvalidInput
from ..limits import (
    IMAGE_OS_MESSAGE,
    IMAGE_OS_RE,
    IMAGE_URL_MAX,
    SHA256_MESSAGE,
    SHA256_RE,
)
from . import validate
from .image_spec import check_not_reserved

FIELDS = ("name", "url", "sha256", "checksums_url", "os")
STORED_AS = ".qcow2"  # an import is always stored as qcow2 (a raw one is converted)


def import_file_name(name):
    """The file an import of this name writes: NAME.qcow2 unless it ends in .qcow2 or .img
    already; a .raw name is refused (the file is stored as qcow2)."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("name is required")
    name = name.strip()
    if name.lower().endswith(".raw"):
        raise InvalidInput(f"an import is stored as qcow2: name it {name[:-4]}.qcow2, not .raw")
    if not name.lower().endswith((STORED_AS, ".img")):
        name += STORED_AS
    return check_not_reserved(check_upload_name(check_image_name(name)))


def check_sha256(value):
    """A SHA-256 as 64 hex digits (lower-cased), or None when not given."""
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not SHA256_RE.fullmatch(value.strip()):
        raise InvalidInput(SHA256_MESSAGE)
    return value.strip().lower()


def check_os(value):
    """What an image holds, e.g. debian-12 (None when not given)."""
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not IMAGE_OS_RE.fullmatch(value.strip()):
        raise InvalidInput(IMAGE_OS_MESSAGE)
    return value.strip()


def _url(value, field):
    """An http(s) URL an import may ask for."""
    if isinstance(value, str) and len(value) > IMAGE_URL_MAX:
        raise InvalidInput(f"{field} must be at most {IMAGE_URL_MAX} characters")
    try:
        return check_url(value)
    except InvalidInput as exc:
        raise InvalidInput(str(exc).replace("url ", f"{field} ", 1)) from None


def check_import(data):
    """importImage's input checked: {name, url, sha256, checksums_url, os}, with None for
    what was not given."""
    validate.require_dict(data, "image")
    validate.refuse_unknown(data, FIELDS, "image")
    spec = {
        "name": import_file_name(data.get("name")),
        "url": _url(data.get("url"), "url"),
        "sha256": check_sha256(data.get("sha256")),
        "checksums_url": None,
        "os": check_os(data.get("os")),
    }
    if data.get("checksums_url") not in (None, ""):
        spec["checksums_url"] = _url(data["checksums_url"], "checksums_url")
    if spec["sha256"] and spec["checksums_url"]:
        raise InvalidInput("give sha256 or checksums_url, not both")
    return spec


# sha256sum's lines ("HEX  name", "HEX *name") and BSD's ("SHA256 (name) = HEX")
_GNU_LINE = re.compile(r"([0-9a-fA-F]{64}) [ *]\.?/?(.+)")
_BSD_LINE = re.compile(r"SHA256 \((.+)\) = ([0-9a-fA-F]{64})")


def checksum_in_list(text, file_name):
    """The SHA-256 a checksums file (sha256sum's or BSD's format) gives for file_name, or
    None when it names no such file."""
    for line in text.splitlines():
        line = line.strip()
        gnu = _GNU_LINE.fullmatch(line)
        if gnu and gnu.group(2) == file_name:
            return gnu.group(1).lower()
        bsd = _BSD_LINE.fullmatch(line)
        if bsd and bsd.group(1) == file_name:
            return bsd.group(2).lower()
    return None
