"""A file server on 127.0.0.1 for image imports in the integration tier: a folder's files, and
two redirects an import must refuse (to a private address, to a file:// URL)."""

import contextlib
import functools
import http.server
import threading

REDIRECTS = {"/to-private": "http://10.1.2.3/disk.qcow2", "/to-file": "file:///etc/passwd"}


class _Handler(http.server.SimpleHTTPRequestHandler):
    """The folder's files, and REDIRECTS."""

    def do_GET(self):
        if self.path in REDIRECTS:
            self.send_response(302)
            self.send_header("Location", REDIRECTS[self.path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *args):
        """Quiet."""


@contextlib.contextmanager
def serving(folder):
    """Serve folder on 127.0.0.1 (a free port) while the block runs; yields the base URL."""
    handler = functools.partial(_Handler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=httpd.serve_forever, args=(0.05,), name="image-server", daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
