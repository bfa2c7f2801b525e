"""`python -m app.console`: run the console proxy on 127.0.0.1:CONSOLE_PORT."""

import argparse
import logging

from app import create_app
from app.db import ensure_schema

from .proxy import LISTEN_HOST, ConsoleProxy


def main(argv=None):
    """Parse the command line, build the app from its settings, and serve until signalled."""
    parser = argparse.ArgumentParser(
        prog="python -m app.console",
        description=f"Nube's console proxy (websockify) on {LISTEN_HOST}.",
    )
    parser.add_argument("--port", type=int, help="listen port (default: the CONSOLE_PORT setting)")
    parser.add_argument("--verbose", action="store_true", help="log every connection step")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s nube-console %(levelname)s %(message)s",
    )
    app = create_app()
    ensure_schema(app.config["DATABASE"])  # console_tokens exists before the first lookup
    ConsoleProxy(app, port=args.port, verbose=args.verbose).start_server()


if __name__ == "__main__":
    main()
