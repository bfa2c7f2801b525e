"""Issue 9's first finding through the real ansible-runner adapter, over SSH to a lab host."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.adapters.ansible import AnsibleProvisioner
from app.errors import InvalidInput

pytestmark = pytest.mark.integration

FIXTURE_PLAYS = Path(__file__).resolve().parents[1] / "fixtures" / "plays"


def test_templates_in_host_values_never_run_on_the_controller(lab_hosts, controller_ssh, tmp_path):
    lab = lab_hosts[0]
    known_hosts = tmp_path / "known_hosts"
    shutil.copy(controller_ssh["known_hosts"], known_hosts)
    provisioner = AnsibleProvisioner(
        FIXTURE_PLAYS, tmp_path / "runner", controller_ssh["keyfile"], known_hosts
    )
    marker = tmp_path / "pwned"
    payload = f"{{{{ lookup('pipe', 'touch {marker}') }}}}"
    # the review's address: refused before ssh-keyscan, known_hosts or an inventory see it
    evil = {"name": "lab", "address": f"fe80::1%{payload},{lab['address']}", "user": lab["user"]}
    with pytest.raises(InvalidInput, match="not a host name or IP address"):
        provisioner.run("echo.yaml", host=evil, password=lab["password"], extravars={"value": "x"})
    # a real run over SSH: a template in a variable arrives as text, and runs nowhere
    host = {"name": "lab", "address": lab["address"], "user": lab["user"]}
    facts = provisioner.run(
        "echo.yaml", host=host, password=lab["password"], extravars={"value": payload}
    )
    assert facts["value"] == payload
    assert facts["inventory_host"] == lab["address"]
    assert not marker.exists()
    assert known_hosts.read_text().count(lab["address"]) == 1  # no key under another name
