"""What the image.build operation does once a worker runs it."""

import contextlib
import os

from ..adapters.image_builder import remove_folder
from ..adapters.qemu_img import check_upload
from ..adapters.storage import file_sha256
from ..repositories import images as images_repo
from .image_spec import check_spec, os_of


def build_folder(ctx):
    """This build's own folder in the controller's private staging folder (its name follows
    from the operation, so an undo after a dead worker finds it too)."""
    # staging: beside images/ (one filesystem, so publishing is a link) and never a host's
    return ctx.storage.staging_dir() / f"image-build-{ctx.id}"


def description(release):
    """What the images page says about a built image."""
    return f"Debian {release}, built by Nube"


def build_image(ctx):
    """Build the image in a staging folder, then publish it into images/ (never over a file)."""
    # checked again at use: a database writer could have put anything in the stored input
    spec = check_spec({**ctx.input, "name": ctx.target_id})
    name, release, size = spec["name"], spec["release"], spec["size"]
    folder = build_folder(ctx)
    ctx.log(f"building {name}: Debian {release}, {size >> 20} MiB disk, in {folder}")
    folder.mkdir(mode=0o700)
    try:
        out = folder / "image.qcow2"
        ctx.adapters.image_builder.build(
            release, size, folder, out, log=ctx.log, check=ctx.check, progress=ctx.progress
        )
        ctx.check()  # canceled during the last step: nothing may appear in images/
        checksum = file_sha256(out)
        publish_staged(ctx, out, name)
    except BaseException:
        remove_staged(ctx, folder, quiet=True)  # the first error stays the cause
        raise
    remove_staged(ctx, folder)
    images_repo.record(
        ctx.conn,
        name,
        uploaded_by=ctx.actor,
        source="build",
        description=description(release),
        os=os_of(release),
        checksum=checksum,
    )
    info = ctx.storage.image_info(name)
    ctx.log(
        f"image {name} ready: {info.actual_size >> 20} MiB qcow2, {info.virtual_size >> 20} MiB disk"
    )
    return {
        "image": name,
        "format": info.format,
        "virtual_size": info.virtual_size,
        "actual_size": info.actual_size,
    }


def publish_staged(ctx, out, name):
    """Link the finished image into images/ as uploads are: checked, 0644, no overwrite."""
    check_upload(ctx.storage.qemu_img.info(out))  # the same gate an uploaded image passes
    ctx.storage.publish_image(out, name)
    ctx.remember("published")


def remove_staged(ctx, folder, quiet=False):
    """Delete a build's (or an import's) staging folder, saying so in the log (quiet: a
    failure is logged, not raised)."""
    if not folder.exists():
        return
    try:
        remove_folder(folder)
    except Exception as exc:
        if not quiet:
            raise
        ctx.error(f"could not remove the staging folder {folder}: {exc}")
        return
    ctx.log(
        f"removed the {'build' if folder.name.startswith('image-build') else 'staging'}"
        f" folder {folder}"
    )


def undo_build(ctx, status):
    """A build that did not succeed leaves no build folder and no image: the folder always
    goes; an image only if this run published it (after a dead worker nobody can say, and a
    published image is whole, so it stays)."""
    undo_staged(ctx, build_folder(ctx))


def undo_staged(ctx, folder):
    """Remove an image operation's staging folder, and the image it published (with its
    record) when this run did publish it."""
    remove_staged(ctx, folder)
    if ctx.recalled("published"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(ctx.storage.images_dir / ctx.target_id)
        images_repo.delete(ctx.conn, ctx.target_id)
        ctx.log(f"removed {ctx.target_id}: the operation did not succeed")
