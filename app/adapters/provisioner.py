"""The provisioner seam: the object that runs playbooks, as the PROVISIONER setting names it.

A provisioner has `run(playbook, *, host, extravars, password, log, cancel, progress,
timeout)` (the facts host_add.yaml gathered, else {}), `host_key(address)`,
`forget_host_key(address)` and `accept_host_key(address, fingerprint)`. Nube's own is
ansible.AnsibleProvisioner; PROVISIONER may name another class as `module:Class`, such as the
unit tests' recording fake in tests/fixtures/provisioners.py (`recording` for short).
"""

import importlib

from ..config import ConfigError

# The contract's word for the unit tests' fake, which lives with the tests, never in app/.
RECORDING = "tests.fixtures.provisioners:RecordingProvisioner"


def provisioner_class(choice):
    """The class a PROVISIONER of the form `module:Class` (or `recording`) names."""
    path = RECORDING if choice == "recording" else choice
    module_name, _, class_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"PROVISIONER {choice}: cannot import {module_name} ({exc})") from None
    found = getattr(module, class_name, None)
    if not isinstance(found, type):
        raise ConfigError(f"PROVISIONER {choice}: {module_name} has no class {class_name}")
    return found
