"""What a command runs with: its arguments, the settings, the API client, where it prints."""

import os
import sys
from pathlib import Path

from . import config, output
from .errors import UsageError
from .http import ApiClient, check_url


class Session:
    """One run of `nube`: the parsed arguments, the environment, stdout and stderr."""

    def __init__(self, args, environ=None):
        self.args = args
        self.environ = os.environ if environ is None else environ
        self._api = None

    @property
    def out(self):
        """Where answers go, cleaned (looked up at each use, so a captured stdout is honoured)."""
        return output.Terminal(sys.stdout)

    @property
    def notes(self):
        """Where notes go (stderr), cleaned."""
        return output.Terminal(sys.stderr)

    @property
    def as_json(self):
        """Whether answers are printed as JSON (-o json)."""
        return self.args.output == "json"

    @property
    def config_path(self):
        """The settings file: --config, or the XDG default."""
        if self.args.config:
            return Path(self.args.config)
        return config.default_path(self.environ)

    def api(self):
        """The API client for the configured URL and token; UsageError when either is missing."""
        if self._api is None:
            url, token = config.connection(self.config_path, self.args.url, self.environ)
            if not url:
                raise UsageError(
                    "no controller URL: run `nube login URL`, or give --url or NUBE_URL"
                )
            url = check_url(url)
            if not token:
                raise UsageError(
                    f"no API token for {url}: run `nube login {url}`, or set NUBE_TOKEN"
                )
            self._api = ApiClient(url, token, warn=self.warn)
        return self._api

    def show(self, data, as_text):
        """Print data as JSON with -o json, else through as_text(out)."""
        if self.as_json:
            output.as_json(data, self.out)
        else:
            as_text(self.out)

    def say(self, message):
        """A note for the person at the terminal (stderr, so stdout stays the answer)."""
        print(message, file=self.notes)

    def warn(self, message):
        """A warning on stderr."""
        self.say(f"nube: warning: {message}")

    def error(self, message):
        """An error on stderr."""
        self.say(f"nube: {message}")
