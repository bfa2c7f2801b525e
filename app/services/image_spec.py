"""What an image build may be asked for: its name, Debian release and disk size, checked on
input and again where the worker uses them (the operation's stored input is only a row)."""

import re

from ..adapters.storage import check_image_name
from ..errors import InvalidInput

BUILD_SUFFIX = ".qcow2"
DEFAULT_RELEASE = "bookworm"
DEFAULT_SIZE = "4G"
RELEASE_RE = re.compile(r"^[a-z][a-z0-9-]{1,30}$")
SIZE_RE = re.compile(r"^([0-9]{1,15})([KMGT]?)$", re.IGNORECASE)
SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
SIZE_MIN = 2 << 30
SIZE_MAX = 64 << 30
# /api/v1/images/build and /api/v1/images/import are actions, not images
RESERVED_NAMES = ("build", "import")


def parse_size(value):
    """A disk size in bytes from bytes (a number) or text like "4G" or "2048M" (powers of
    1024), a whole number of MiB between SIZE_MIN and SIZE_MAX."""
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    else:
        match = SIZE_RE.fullmatch(value.strip()) if isinstance(value, str) else None
        if not match:
            raise InvalidInput(
                f"size must be bytes or a number with K, M, G or T, like 4G, not {value!r:.40}"
            )
        size = int(match.group(1)) * SIZE_UNITS[match.group(2).upper()]
    if size % (1 << 20):
        raise InvalidInput("size must be a whole number of MiB")
    if not SIZE_MIN <= size <= SIZE_MAX:
        raise InvalidInput(f"size must be between {SIZE_MIN >> 30}G and {SIZE_MAX >> 30}G")
    return size


def check_release(release):
    """A Debian code name (it becomes mmdebstrap's SUITE and a line of grub.cfg)."""
    if not isinstance(release, str) or not RELEASE_RE.fullmatch(release):
        raise InvalidInput(
            f"release {release!r:.40} must be a Debian code name such as bookworm:"
            " lower-case letters, digits and '-'"
        )
    return release


def build_file_name(name):
    """The file a build of this name writes: images are files, so debian12 is built as
    images/debian12.qcow2; checked as an image name."""
    if not name.endswith(BUILD_SUFFIX):
        name += BUILD_SUFFIX
    return check_image_name(name)


def check_not_reserved(name):
    """Refuse the names of the API's image actions (images/build, images/import)."""
    if name in RESERVED_NAMES:
        raise InvalidInput(f"{name} is reserved (the API's images/{name} is an action)")
    return name


def check_spec(spec):
    """A build's stored spec ({name, release, size}) checked as on input; the same dict."""
    if not isinstance(spec, dict):
        raise InvalidInput("an image build needs a name, a release and a size")
    name = spec.get("name")
    if not isinstance(name, str) or not name.endswith(BUILD_SUFFIX):
        raise InvalidInput(f"image name {name!r:.40} must end with {BUILD_SUFFIX}")
    return {
        "name": check_image_name(name),
        "release": check_release(spec.get("release")),
        "size": parse_size(spec.get("size")),
    }


# Debian's code names and their version numbers: a built image's OS is debian-12, not bookworm
DEBIAN_VERSIONS = {
    "buster": 10,
    "bullseye": 11,
    "bookworm": 12,
    "trixie": 13,
    "forky": 14,
    "duke": 15,
}


def os_of(release):
    """The OS a build of this Debian release holds, as the images table records it."""
    version = DEBIAN_VERSIONS.get(release)
    return f"debian-{version}" if version else f"debian-{release}"[:40]
