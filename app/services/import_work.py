"""What the image.import operation does once a worker runs it: fetch (app/adapters/
image_fetch.py) into its own staging folder, verify, check as uploads are, convert a raw
image to qcow2, publish into images/ and record what it is. Anything short of success leaves
nothing in images/ or staging (undo_import)."""

import posixpath
from urllib.parse import unquote, urlsplit

from ..adapters.qemu_img import BOOT_SIGNATURE, SECTOR, QemuImgError, check_upload, image_format
from ..adapters.storage import file_sha256
from ..errors import InvalidInput, OperationFailed
from ..repositories import images as images_repo
from .image_work import publish_staged, remove_staged, undo_staged
from .import_spec import check_import, checksum_in_list

CHECKSUMS_MAX = 1 << 20  # a checksums file larger than this is not one
STEPS = 4  # fetch, check, convert, publish


def import_folder(ctx):
    """This import's folder in the controller's staging folder (named after the operation, so
    an undo after a dead worker finds it too)."""
    return ctx.storage.staging_dir() / f"image-import-{ctx.id}"


def import_image(ctx):
    """Fetch, verify, check, convert and publish the image; returns what was published."""
    # checked again at use: a database writer could have put anything in the stored input
    spec = check_import({**ctx.input, "name": ctx.target_id})
    name = spec["name"]
    folder = import_folder(ctx)
    folder.mkdir(mode=0o700)
    ctx.progress(0, STEPS)
    try:
        expected = _expected_checksum(ctx, spec)
        fetched = _fetch(ctx, spec["url"], folder / "download")
        _verify(expected, fetched)
        ctx.progress(1, STEPS)
        out = _as_qcow2(ctx, folder, name)
        ctx.check()  # canceled during the conversion: nothing may appear in images/
        checksum = fetched.sha256 if out == folder / "download" else file_sha256(out)
        publish_staged(ctx, out, name)
        ctx.progress(STEPS, STEPS)
    except BaseException:
        remove_staged(ctx, folder, quiet=True)  # the first error stays the cause
        raise
    remove_staged(ctx, folder)
    _record(ctx, name, spec, checksum)
    info = ctx.storage.image_info(name)
    ctx.log(f"image {name} ready: {info.format}, {info.virtual_size >> 20} MiB disk")
    return {
        "image": name,
        "format": info.format,
        "virtual_size": info.virtual_size,
        "actual_size": info.actual_size,
        "sha256": checksum,
    }


def _record(ctx, name, spec, checksum):
    """Record what the imported image is: its OS as given, its file's SHA-256, its URL."""
    images_repo.record(
        ctx.conn,
        name,
        uploaded_by=ctx.actor,
        source="import",
        os=spec["os"],
        checksum=checksum,
        source_url=spec["url"],
    )


def _expected_checksum(ctx, spec):
    """The SHA-256 the file must have: given, read from the checksums file, or None."""
    if not spec["checksums_url"]:
        return spec["sha256"]
    file_name = unquote(posixpath.basename(urlsplit(spec["url"]).path))
    ctx.log(f"reading the checksum of {file_name} from {spec['checksums_url']}")
    text = ctx.adapters.image_fetch.fetch_text(spec["checksums_url"], CHECKSUMS_MAX, ctx.log)
    found = checksum_in_list(text, file_name)
    if not found:
        raise OperationFailed(
            f"the checksums file {spec['checksums_url']} has no SHA-256 for {file_name!r}"
        )
    return found


def _fetch(ctx, url, path):
    """Stream url into path under the size cap, checking for cancel as it goes."""
    cap = ctx.config["MAX_UPLOAD_MB"] * 1024 * 1024
    ctx.log(f"fetching {url} (at most {ctx.config['MAX_UPLOAD_MB']} MB)")
    with open(path, "xb") as out:
        return ctx.adapters.image_fetch.fetch(url, out, cap, log=ctx.log, check=ctx.check)


def _verify(expected, fetched):
    """Refuse a file whose SHA-256 is not the one asked for, naming both."""
    if expected and fetched.sha256 != expected:
        raise OperationFailed(
            f"checksum mismatch: expected SHA-256 {expected}, the file fetched from"
            f" {fetched.url} has {fetched.sha256}"
        )


def _as_qcow2(ctx, folder, name):
    """Check the download as an upload is checked; a raw image is converted to qcow2.
    Returns the file to publish."""
    download = folder / "download"
    try:
        info = ctx.storage.qemu_img.info(download, fmt=image_format(download))
    except QemuImgError as exc:
        raise InvalidInput(f"not a readable disk image: {exc}") from None
    check_upload(info)  # format, no backing file, no data file, not empty
    with open(download, "rb") as handle:
        first = handle.read(SECTOR)
    if info["format"] == "raw" and first[SECTOR - 2 : SECTOR] != BOOT_SIGNATURE:
        raise InvalidInput(
            "the file fetched is raw data with no partition table or boot sector (its first"
            " sector does not end in 55 AA): not a disk image a VM could boot"
        )
    ctx.log(f"checked: {info['format']}, {int(info['virtual-size']) >> 20} MiB disk")
    ctx.progress(2, STEPS)
    if info["format"] == "qcow2":
        return download
    ctx.check()
    out = folder / "image.qcow2"
    ctx.log(f"converting the raw image to qcow2 for {name}")
    ctx.storage.qemu_img.run(
        ["convert", "-f", "raw", "-O", "qcow2", "--", str(download), str(out)], ctx.log
    )
    download.unlink()
    check_upload(ctx.storage.qemu_img.info(out, fmt="qcow2"))
    ctx.progress(3, STEPS)
    return out


def undo_import(ctx, status):
    """An import that did not succeed leaves no staging folder and no image (an image only
    if this run published it)."""
    undo_staged(ctx, import_folder(ctx))
