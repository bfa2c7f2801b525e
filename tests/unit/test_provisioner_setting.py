"""PROVISIONER picks the provisioner: `ansible`, `recording` (the unit tests' fake, which lives
in tests/) or any class as `module:Class`; anything else is refused at start-up, and no module
in app/ imports the tests."""

import ast
from pathlib import Path

import pytest

from app.adapters.provisioner import provisioner_class
from app.config import ConfigError, load_settings
from app.extensions import adapters
from tests.fixtures import provisioners

APP = Path(__file__).resolve().parents[2] / "app"


@pytest.fixture(
    params=[
        ("recording", provisioners.RecordingProvisioner),
        ("tests.fixtures.provisioners:BlockingProvisioner", provisioners.BlockingProvisioner),
    ]
)
def chosen(request):
    """A PROVISIONER value and the class it names."""
    return request.param


@pytest.fixture
def provisioner(chosen):
    """The app fixture's PROVISIONER: the setting's text, not a ready object."""
    return chosen[0]


def test_the_setting_names_the_class_the_app_uses(app, chosen):
    assert type(adapters(app).provisioner) is chosen[1]


@pytest.mark.parametrize("value", ["fake", "recording:", "tests.fixtures.provisioners"])
def test_other_words_are_refused_at_start(tmp_path, value):
    with pytest.raises(ConfigError, match="PROVISIONER must be ansible, recording or a class"):
        load_settings(tmp_path, environ={"NUBE_PROVISIONER": value})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nube_no_such_module:Thing", "cannot import nube_no_such_module"),
        ("tests.fixtures.provisioners:Nothing", "tests.fixtures.provisioners has no class Nothing"),
        ("tests.fixtures.provisioners:threading", "has no class threading"),
    ],
)
def test_a_class_that_is_not_there_is_a_clear_error(value, message):
    with pytest.raises(ConfigError, match=message):
        provisioner_class(value)


def test_no_module_in_app_imports_the_tests():
    for path in APP.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not [n for n in names if n.split(".")[0] == "tests"], path
