"""Routes of the images blueprint."""

from flask import Blueprint, flash, redirect, render_template, url_for

from ...errors import NubeError
from ...services import image_import, images
from ..helpers import actor, flash_error, to_operation
from .forms import BuildForm, ImportForm, UploadForm

bp = Blueprint("images", __name__, url_prefix="/images")


@bp.route("/")
def index():
    """Base images in the repository, with the upload, build and import forms."""
    return render_template(
        "images/index.html",
        images=images.search(),
        form=UploadForm(),
        build_form=BuildForm(),
        import_form=ImportForm(),
    )


def _flash_form_errors(form):
    """Flash each field's validation messages."""
    for field, messages in form.errors.items():
        label = form[field].label.text if field in form else field
        flash(f"{label}: {' '.join(messages)}", "danger")


def _file_name(file_storage):
    """The uploaded file's own name, without any folder a browser might send."""
    return (file_storage.filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()


@bp.route("/upload", methods=["POST"])
def upload():
    """Stream an uploaded image into the repository."""
    form = UploadForm()
    if not form.validate_on_submit():
        _flash_form_errors(form)
        return redirect(url_for("images.index"))
    file_storage = form.file.data
    name = (form.name.data or "").strip() or _file_name(file_storage)
    try:
        info = images.upload(name, file_storage.stream, form.description.data, actor())
    except NubeError as error:
        flash_error(error)
    else:
        flash(f"Image {info.name} uploaded ({info.format}).", "success")
    return redirect(url_for("images.index"))


@bp.route("/build", methods=["POST"])
def build():
    """Start building a Debian image; its operation page shows the live log."""
    form = BuildForm()
    if not form.validate_on_submit():
        _flash_form_errors(form)
        return redirect(url_for("images.index"))
    data = {key: form[key].data.strip() for key in ("name", "release", "size")}
    return to_operation(
        lambda: images.build(data, actor(), wait=False),
        f"Building image {data['name']}.",
        lambda: redirect(url_for("images.index")),
    )


@bp.route("/import", methods=["POST"])
def import_():
    """Start importing an image from a URL; its operation page shows the live log."""
    form = ImportForm()
    if not form.validate_on_submit():
        _flash_form_errors(form)
        return redirect(url_for("images.index"))
    fields = ("name", "url", "sha256", "checksums_url", "os")
    data = {key: (form[key].data or "").strip() for key in fields}
    return to_operation(
        lambda: image_import.start(data, actor(), wait=False),
        f"Importing image {data['name']}.",
        lambda: redirect(url_for("images.index")),
    )


@bp.route("/<name>/delete", methods=["POST"])
def delete(name):
    """Delete an image no VM uses."""
    try:
        images.delete(name, actor())
    except NubeError as error:
        flash_error(error)
    else:
        flash(f"Image {name} deleted.", "success")
    return redirect(url_for("images.index"))
