"""A host's address and other fields: allow-listed on input, checked again before any
ansible run, handed to ansible as data, bracketed in libvirt URIs, and never two hosts' own."""

import subprocess
from pathlib import Path

import pytest

from app import core
from app.adapters.ansible import AnsibleProvisioner
from app.errors import InvalidInput
from tests.factories import gen_host

FIXTURE_PLAYS = Path(__file__).parent.parent / "fixtures" / "plays"
TEMPLATE_ADDRESS = "fe80::1%{{lookup('pipe','id>/tmp/nube-pwned')}},127.0.0.2"


# Issue 9, finding 1: a host's address led to code execution on the controller.


@pytest.mark.parametrize(
    "address",
    [
        TEMPLATE_ADDRESS,
        "fe80::1%eth0",
        "127.0.0.2,127.0.0.3",
        "host name",
        "-oProxyCommand=id",
        "127.0.0.2\nhost: x",
        "{{ 7*7 }}",
        "[::1]",
        "999.1.1.1",
        "127.1",
        "0x7f.1",
        "0x0a000005",
        "10.0.0.5.17",
        "::ffff:10.0.0.5",
        "0.0.0.0",
        "::",
        "224.0.0.1",
    ],
)
def test_addresses_outside_the_allow_list_are_refused(app, provisioner, address):
    refused = "not a host name or IP address|names no single host|write the IPv4 address"
    with app.app_context(), pytest.raises(InvalidInput, match=refused):
        core.addHost({"address": address, "user": "root", "password": "pw"})
    with app.app_context():
        assert core.listHosts() == []
    assert provisioner.runs == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("user", "root{{x}}"), ("user", "ro\not"), ("name", "h1\nx"), ("network", "net\nx")],
)
def test_other_host_fields_are_allow_listed_too(app, field, value):
    data = {"address": "127.0.0.1", "user": "root", "password": "pw", field: value}
    with app.app_context(), pytest.raises(InvalidInput):
        core.addHost(data)


def test_the_provisioner_checks_a_stored_address_again_before_any_run(tmp_path):
    """A row written before the allow-list existed never reaches an inventory."""
    provisioner = AnsibleProvisioner(
        FIXTURE_PLAYS, tmp_path / "runner", tmp_path / "key", tmp_path / "known_hosts"
    )
    host = {"name": "h1", "address": TEMPLATE_ADDRESS, "user": "root"}
    with pytest.raises(InvalidInput):
        provisioner.run("echo.yaml", host=host, extravars={"value": "x"})
    assert not (tmp_path / "runner").exists() or not any((tmp_path / "runner").iterdir())


@pytest.mark.slow  # a real ansible-runner playbook
def test_variables_reach_ansible_as_data_and_the_worker_environment_stays_out(
    tmp_path, monkeypatch
):
    """A template in a variable is never evaluated (real ansible-runner); NUBE_* secrets of the
    worker's environment reach neither the play nor the run folder's artifacts."""
    marker = tmp_path / "pwned"
    monkeypatch.setenv("NUBE_SECRET_KEY", "secret-key-marker-9431")
    monkeypatch.setenv("NUBE_ADMIN_PASSWORD", "admin-password-marker-9431")
    provisioner = AnsibleProvisioner(
        FIXTURE_PLAYS, tmp_path / "runner", tmp_path / "key", tmp_path / "known_hosts"
    )
    payload = f"{{{{ lookup('pipe', 'touch {marker}') }}}}"
    facts = provisioner.run("echo.yaml", extravars={"value": payload})
    assert facts["value"] == payload  # passed through literally
    assert not marker.exists()
    assert facts["secret_env"] == ""
    leaked = subprocess.run(
        ["grep", "-rl", "marker-9431", str(tmp_path / "runner")], capture_output=True, text=True
    )
    assert leaked.stdout == ""
    command = next((tmp_path / "runner").glob("*/artifacts/*/command"))
    assert "NUBE_SECRET_KEY" not in command.read_text()


# Issue 9, finding 9: IPv6 hosts.


def test_ipv6_hosts_get_a_bracketed_libvirt_uri(app):
    with app.app_context():
        host = core.addHost({"address": "::1", "user": "root", "prepare": False, "name": "v6"})
    assert host["address"] == "::1"
    hypervisor = app.extensions["nube"].hypervisor
    hypervisor.uri_template = "qemu+libssh2://{user}@{address}/system"
    assert hypervisor.uri_for(host) == "qemu+libssh2://root@[::1]/system"
    assert hypervisor.uri_for({**host, "address": "127.0.0.2"}) == (
        "qemu+libssh2://root@127.0.0.2/system"
    )
    with pytest.raises(InvalidInput):
        hypervisor.uri_for({**host, "address": "::1%eth0"})


def test_an_address_in_use_is_refused_and_changes_nothing(app):
    with app.app_context():
        gen_host(app, name="a")
        other = gen_host(app, address="127.0.0.2", name="b")
        with pytest.raises(core.InvalidInput, match="already has address 127.0.0.1"):
            core.updateHost(other["id"], {"address": "127.0.0.1"})
        after = [h for h in core.listHosts() if h["name"] == "b"][0]
    assert (after["address"], after["state"]) == ("127.0.0.2", "ready")
