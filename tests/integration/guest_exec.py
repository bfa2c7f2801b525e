"""Run a command inside a real guest through its QEMU guest agent (guest-exec), as a test
reaches a guest the lab gives no network: over the controller's own libvirt connection to the
guest's host, never over a network of the machine."""

import base64
import json
import time

import libvirt
import libvirt_qemu

from app import core

AGENT_TIMEOUT = 30  # seconds for one agent call
EXEC_TIMEOUT = 120.0  # seconds a command may run


def _agent(domain, command, arguments=None):
    """One guest agent command and its answer's `return`."""
    request = {"execute": command}
    if arguments is not None:
        request["arguments"] = arguments
    answer = libvirt_qemu.qemuAgentCommand(domain, json.dumps(request), AGENT_TIMEOUT, 0)
    return json.loads(answer)["return"]


def _domain(app, vm_id):
    """The VM's domain, on a fresh connection to its host (the adapter's URI)."""
    [vm] = core.listVms(f"id = {vm_id}")
    [host] = [h for h in core.listHosts() if h["id"] == vm["host"]]
    connection = libvirt.open(app.extensions["nube"].hypervisor.uri_for(host))
    return connection, connection.lookupByName(vm_id)


def run(app, vm_id, *argv, check=True):
    """Run argv in the guest (as root, through the agent); returns (exit code, stdout,
    stderr). With check, a non-zero exit fails with what the command said."""
    connection, domain = _domain(app, vm_id)
    try:
        started = _agent(
            domain,
            "guest-exec",
            {"path": argv[0], "arg": list(argv[1:]), "capture-output": True},
        )
        deadline = time.monotonic() + EXEC_TIMEOUT
        while True:
            status = _agent(domain, "guest-exec-status", {"pid": started["pid"]})
            if status.get("exited"):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"{argv} did not end in {vm_id} within {EXEC_TIMEOUT}s")
            time.sleep(0.2)
    finally:
        connection.close()

    def text(key):
        return base64.b64decode(status.get(key, "")).decode(errors="replace")

    result = (status.get("exitcode", -1), text("out-data"), text("err-data"))
    if check and result[0] != 0:
        raise AssertionError(f"{argv} exited {result[0]} in {vm_id}: {result[1]}{result[2]}")
    return result


def shell(app, vm_id, script, check=True):
    """Run a shell script in the guest; returns its stdout."""
    return run(app, vm_id, "/bin/sh", "-c", script, check=check)[1]
