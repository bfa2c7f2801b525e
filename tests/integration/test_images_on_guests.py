"""Images from a URL against the integration tier's controller (the one whose guests booted
from Nube's Debian image imported from 127.0.0.1 with its checksum, tests/integration/guests.py):
a wrong checksum, a redirect to a refused address, a file:// URL and a body larger than the cap
each fail with a clear message and leave nothing in images/."""

import pytest

from app import core
from app.adapters.storage import file_sha256
from app.services import images
from tests.images import built_image
from tests.integration import image_server
from tests.integration.guests import IMAGE

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_imported_image_is_recorded_and_an_untrusted_import_leaves_nothing(running_guests):
    app, repository = running_guests["app"], running_guests["repository"]
    image = built_image()
    before = sorted(p.name for p in (repository / "images").iterdir())
    with app.app_context(), image_server.serving(image.parent) as base:
        [imported] = [i for i in images.search() if i["name"] == IMAGE]
        assert (imported["os"], imported["source"]) == ("debian-12", "import")
        assert imported["sha256"] == file_sha256(image)
        url = f"{base}/{image.name}"
        cases = [
            ({"url": url, "sha256": "0" * 64}, "checksum"),
            ({"url": f"{base}/to-private"}, "10.1.2.3"),
            ({"url": f"{base}/to-file"}, "file"),
            ({"url": "file:///etc/passwd"}, "file"),
        ]
        for fields, message in cases:
            with pytest.raises((core.OperationFailed, core.InvalidInput), match=message):
                core.importImage({"name": "refused.qcow2", **fields})
        app.config["MAX_UPLOAD_MB"] = 1  # the cap: the image is far larger
        try:
            with pytest.raises(core.OperationFailed, match="MAX_UPLOAD_MB"):
                core.importImage({"name": "refused.qcow2", "url": url})
        finally:
            app.config["MAX_UPLOAD_MB"] = 20480
    assert sorted(p.name for p in (repository / "images").iterdir()) == before
