"""The API's schema of an image import (beside schemas.py's Image and ImageBuild)."""

from marshmallow import Schema, fields


class ImageImport(Schema):
    """importImage's input."""

    name = fields.String(
        required=True, metadata={"description": "stored as images/NAME.qcow2 (or NAME.img)"}
    )
    url = fields.String(required=True, metadata={"description": "http:// or https://"})
    sha256 = fields.String(metadata={"description": "the file's SHA-256, 64 hex digits"})
    checksums_url = fields.String(
        metadata={"description": "a SHA256SUMS file naming the URL's file (instead of sha256)"}
    )
    os = fields.String(metadata={"description": "what it holds, e.g. debian-12"})
