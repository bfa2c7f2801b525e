"""The dashboard's scripts pass ESLint (as `make lint` runs it), and ESLint refuses a script
that names something defined nowhere: a call to a removed function fails here, not in an
operator's browser."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[2] / "static"
ESLINT = STATIC / "node_modules" / ".bin" / "eslint"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


def _eslint(*args, stdin=None):
    """Run the project's ESLint in static/ (its config); the completed process."""
    assert ESLINT.exists(), "ESLint is missing: npm ci --prefix static --include=dev"
    return subprocess.run(
        [str(ESLINT), "--max-warnings", "0", *args],
        cwd=STATIC,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_script_passes():
    scripts = sorted(path.name for path in STATIC.glob("*.js"))
    assert "live.js" in scripts and "operation.js" in scripts
    result = _eslint(*scripts)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_script_is_linted():
    listed = _eslint("--format", "json", ".")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    checked = {Path(entry["filePath"]).name for entry in json.loads(listed.stdout)}
    assert {path.name for path in STATIC.glob("*.js")} <= checked


@pytest.mark.parametrize(
    ("source", "rule"),
    [
        ('"use strict";\nformatProgress(1, 2);\n', "no-undef"),
        ('"use strict";\nfunction unused() {}\n', "no-unused-vars"),
    ],
)
def test_an_undefined_or_unused_name_is_refused(source, rule):
    # a script as the templates load it (the config's rules for static/*.js), never written out
    result = _eslint("--stdin", "--stdin-filename", "probe.js", stdin=source)
    assert result.returncode == 1, result.stdout + result.stderr
    assert rule in result.stdout


def test_the_browser_globals_are_known():
    source = '"use strict";\nwindow.setTimeout(() => document.title, 1);\nfetch("/");\n'
    result = _eslint("--stdin", "--stdin-filename", "probe.js", stdin=source)
    assert result.returncode == 0, result.stdout + result.stderr
