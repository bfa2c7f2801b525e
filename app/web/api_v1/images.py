"""/api/v1/images: list, show, upload, build, import and delete base images."""

from flask import request
from werkzeug.routing import BaseConverter

from ...adapters.storage import IMAGE_NAME_RE
from ...errors import NotFound
from ...services import image_import, images
from ..helpers import actor
from .common import Window, accepted, blueprint
from .image_schemas import ImageImport
from .schemas import Accepted, Image, ImageBuild, ImageUploadArgs, PageArgs, page_of

bp = blueprint("images", __name__, "/images", "Base images in the repository")
ImagePage = page_of(Image, "ImagePage")


class ImageNameConverter(BaseConverter):
    """An image name in a path, never the words 'build' or 'import': /images/build and
    /images/import are actions (POST only), so GET or DELETE there is a 405, not a search for
    an image of that name (a name the images service refuses)."""

    regex = r"(?!(?:build|import)(?![A-Za-z0-9_.+-]))" + IMAGE_NAME_RE.strip("^$")


def image_name_schema(converter):
    """The OpenAPI schema of an image name in a path."""
    return {"type": "string", "pattern": f"^{converter.regex}$"}


@bp.route("")
@bp.arguments(PageArgs, location="query")
@bp.response(200, ImagePage)
def index(args):
    """Every image file in the repository, by name, paged."""
    return Window(args).slice(images.search())


def _image(name):
    """One image as the list shows it."""
    for image in images.search():
        if image["name"] == name:
            return image
    raise NotFound(f"image {name} not found")


@bp.route("/<image:name>")
@bp.response(200, Image)
def show(name):
    """One image, with who uploaded it and how many VMs use it."""
    return _image(name)


UPLOAD_BODY = {
    "required": True,
    "description": "the image file (qcow2 or raw), at most MAX_UPLOAD_MB",
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
}


@bp.route("/<image:name>", methods=["PUT"])
@bp.arguments(ImageUploadArgs, location="query")
@bp.doc(requestBody=UPLOAD_BODY)
@bp.response(201, Image)
def upload(args, name):
    """Upload an image: the request body, streamed into images/NAME and checked as the
    dashboard's upload is (never replaces an image)."""
    images.upload(name, request.stream, args["description"], actor())
    return _image(name)


@bp.route("/build", methods=["POST"])
@bp.arguments(ImageBuild)
@bp.response(202, Accepted)
def build(data):
    """Build a Debian image with cloud-init into images/NAME.qcow2."""
    return accepted(images.build(data, actor(), wait=False))


@bp.route("/import", methods=["POST"])
@bp.arguments(ImageImport)
@bp.response(202, Accepted)
def import_(data):
    """Import an image from an http(s) URL into images/NAME: streamed, its SHA-256 checked
    (given, or read from a checksums file), checked as uploads are, stored as qcow2."""
    return accepted(image_import.start(data, actor(), wait=False))


@bp.route("/<image:name>", methods=["DELETE"])
@bp.response(204)
def remove(name):
    """Delete an image no VM uses."""
    images.delete(name, actor())
    return ""
