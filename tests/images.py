"""A real Debian guest image, built by Nube's own image.build (through core.buildImage) and
cached outside the repository, for tests that boot a guest.

    from tests.images import debian_image  # the session fixture: a path to a qcow2

    path = built_image()  # or the helper itself: builds once, then reuses the cached file

The cache key covers what decides the image's content: the release, the size, the package
list and the builder module's source, so editing the recipe builds afresh. Tests use it as a
base image (an overlay, or QEMU's snapshot=on) and never write to it. The cache folder is NUBE_IMAGE_CACHE, by default
~/.cache/nube/images.
"""

import fcntl
import hashlib
import inspect
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from app import core, create_app
from app.adapters import image_builder
from app.adapters.commands import CommandRunner
from app.services.image_spec import parse_size

DEFAULT_RELEASE = "bookworm"
DEFAULT_SIZE = "4G"


def cache_dir() -> Path:
    """Where built images are kept between runs."""
    return Path(os.environ.get("NUBE_IMAGE_CACHE") or Path.home() / ".cache/nube/images")


def image_key(release=DEFAULT_RELEASE, size=DEFAULT_SIZE) -> str:
    """The cache key of an image: a hash of everything that decides its content."""
    recipe = {
        "release": release,
        "size": parse_size(size),
        "packages": list(image_builder.PACKAGES),
        "builder": inspect.getsource(image_builder),
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:32]


def build_unavailable_reason() -> str | None:
    """Say why a real image cannot be built here, or None when it can."""
    if os.geteuid() != 0:
        return "building an image needs root (mmdebstrap's root mode)"
    missing = CommandRunner().missing(list(image_builder.TOOLS))
    if missing:
        packages = " ".join(sorted({image_builder.TOOLS[tool] for tool in missing}))
        return f"building an image needs {', '.join(missing)} (Debian packages {packages})"
    if not (Path(image_builder.GRUB_DIR) / "boot.img").is_file():
        return "building an image needs grub-pc-bin"
    return None


def _build_into(path, release, size):
    """Build an image with a throw-away Nube (temp database and repository) and move the
    qcow2 to path."""
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".build-") as work:
        work = Path(work)
        repository = work / "iaas"
        (repository / "images").mkdir(parents=True)
        (repository / "vms").mkdir()
        app = create_app(
            {
                "TESTING": True,
                "INSTANCE_PATH": str(work / "instance"),
                "DATABASE": str(work / "nube.sqlite"),
                "REPOSITORY": str(repository),
                "LIBVIRT_URI": "test:///default",
                "PROVISIONER": "recording",
                "QUEUE": "immediate",
                "SECRET_KEY": "image-build",
            }
        )
        try:
            with app.app_context():
                info = core.buildImage({"name": "built", "release": release, "size": size})
        finally:
            app.extensions["nube"].hypervisor.close()
        built = repository / "images" / info["name"]
        os.chmod(built, 0o644)
        os.replace(built, path)  # same filesystem: the cache shows a whole file or none


def built_image(release=DEFAULT_RELEASE, size=DEFAULT_SIZE) -> Path:
    """The path of a built image of release and size, built now (about two minutes) unless
    the cache has it. Several test processes at once build it once (a lock file)."""
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    key = image_key(release, size)
    path = folder / f"debian-{release}-{key}.qcow2"
    with open(folder / f".{key}.lock", "w") as lock:  # kept: a lock file is its inode
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.is_file():
            _build_into(path, release, size)
    return path


def keep_built(image, release=DEFAULT_RELEASE, size=DEFAULT_SIZE) -> Path:
    """Put an image Nube built (through the dashboard) in the cache, unless it has one: the
    same recipe, so the tests that boot a guest later use it instead of building again."""
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    key = image_key(release, size)
    path = folder / f"debian-{release}-{key}.qcow2"
    with open(folder / f".{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.is_file():
            copy = folder / f".keep-{key}.part"
            shutil.copyfile(image, copy)
            os.chmod(copy, 0o644)
            os.replace(copy, path)  # the cache shows a whole file or none
    return path


@pytest.fixture(scope="session")
def debian_image():
    """A path to a built Debian bookworm image (4G, cached; built on first use)."""
    reason = build_unavailable_reason()
    if reason and os.environ.get("CI"):
        pytest.fail(f"CI must be able to build images: {reason}")
    if reason:
        pytest.skip(reason)
    return built_image()
