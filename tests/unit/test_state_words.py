"""app/states is the one place state words are defined (issue 25, item 1).

The scan's rule, strict but not absurd:

- Python (app/**/*.py): no tuple, list, set or dict (its keys) literal holds two or more state
  words: a set of states is a definition, and only app/states.py makes them. A single literal
  (`vm["state"] != "running"`, `set_state(conn, id, "stopped")`) is a use, allowed. No SQL text
  in app/repositories quotes a state word: words are `?` parameters, IN-lists come from
  states.sql_in. app/migrations.py is exempt: its CHECK lists are the schema as each past
  version made it (history, never edited).
- Templates (app/templates/**): no tuple or list literal of two or more state words (they read
  the Jinja global `states`); every word a template compares a state or status with, or gives
  to status_badge, is one the module knows.
- Scripts (static/*.js, not node_modules): no array or object literal holding two or more state
  words (colours, labels and the active statuses come as JSON in base.html's data-nube-states);
  every word a script compares a state or status with is one the module knows.
"""

import ast
import html
import json
import re
from pathlib import Path

import libvirt
import pytest

from app import states
from app.adapters import hypervisor

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app"
EXEMPT = {APP / "states.py", APP / "migrations.py"}
LIBVIRT_STATES = (
    "running",
    "blocked",
    "paused",
    "shutdown",
    "shutoff",
    "crashed",
    "pmsuspended",
    "nostate",
)


# --- the module itself ---


@pytest.mark.parametrize("name", sorted(states.CHOICE_SETS))
def test_every_state_has_a_label_and_a_colour(name):
    choice_set = states.CHOICE_SETS[name]
    assert len(choice_set) >= 2
    for choice in choice_set.items():
        assert choice.label.strip(), f"{name}.{choice.value} has no label"
        assert choice.colour in {
            "primary",
            "secondary",
            "success",
            "danger",
            "warning",
            "info",
            "light",
            "dark",
        }, f"{name}.{choice.value}: {choice.colour!r} is no Bootstrap colour"


def test_a_word_in_several_sets_has_one_colour_and_one_label():
    seen = {}
    for choice_set in states.CHOICE_SETS.values():
        for choice in choice_set.items():
            first = seen.setdefault(choice.value, (choice.colour, choice.label))
            if choice_set not in (states.SHARE, states.ROLE):
                assert first == (choice.colour, choice.label), choice.value


def test_subsets_hold_only_words_of_their_set():
    assert set(states.VM_STARTABLE + states.VM_STOPPABLE + states.VM_REMOVABLE) <= set(states.VM)
    assert set(states.VM_MIGRATABLE) <= set(states.VM)
    for subset in (
        states.HOST_DRAINABLE,
        states.HOST_OPERATOR_SETTABLE,
        states.HOST_SET_ASIDE,
        states.HOST_POLLED,
        states.HOST_TROUBLED,
    ):
        assert set(subset) <= set(states.HOST)
    assert set(states.HOST_CHANGING_TASKS) <= set(states.HOST_TASK)
    assert set(states.OPERATION_ACTIVE) | set(states.OPERATION_TERMINAL) == set(states.OPERATION)
    assert not set(states.OPERATION_ACTIVE) & set(states.OPERATION_TERMINAL)
    assert set(states.OPERATION_UNSUCCESSFUL) <= set(states.OPERATION_TERMINAL)


def test_kinds_start_from_the_modules_sets():
    from app.ops import kinds

    assert kinds.VM_START.from_states is states.VM_STARTABLE
    assert kinds.VM_STOP.from_states is states.VM_STOPPABLE
    assert kinds.VM_REMOVE.from_states is states.VM_REMOVABLE
    assert kinds.VM_MIGRATE.from_states is states.VM_MIGRATABLE
    assert kinds.HOST_DRAIN.from_states is states.HOST_DRAINABLE


def test_every_claim_names_words_of_the_module():
    from app.ops import kinds

    tasks = {"vms": states.VM_TASK, "hosts": states.HOST_TASK, "volumes": states.VOLUME_TASK}
    rows = {"vms": states.VM, "hosts": states.HOST, "volumes": states.VOLUME}
    for kind in kinds.KINDS.values():
        claim = kind.claim
        while claim is not None:
            if claim.table:
                assert claim.task in tasks[claim.table], (kind.name, claim.task)
                assert set(claim.from_states) <= set(rows[claim.table]), kind.name
                assert claim.sets_state in (None, *rows[claim.table]), kind.name
            claim = claim.each


def test_pages_are_served_the_labels_and_colours(admin_client):
    page = admin_client.get("/").get_data(as_text=True)
    found = re.search(r"<body data-nube-states='([^']*)'>", page)
    assert found, "base.html serves no data-nube-states"
    served = json.loads(html.unescape(found.group(1)))
    assert served == json.loads(json.dumps(states.served()))
    assert set(served["colours"]) == set(served["labels"]) >= set(states.VM) | set(states.HOST)


# --- one mapping from a domain's state to a VM's ---

EXPECTED = {
    "running": "running",
    "blocked": "running",
    "shutdown": "running",  # up while the guest shuts down
    "paused": "running",  # its guest and memory are still there
    "pmsuspended": "running",
    "shutoff": "stopped",
    "crashed": "stopped",
    "nostate": "stopped",
}


@pytest.mark.parametrize("name", LIBVIRT_STATES)
def test_each_libvirt_state_has_one_vm_state(name):
    code = getattr(libvirt, f"VIR_DOMAIN_{name.upper()}")
    word = hypervisor._STATES[code]  # what the adapter reports for it
    assert word == states.LIBVIRT_DOMAIN[name]
    assert states.vm_state(word) == EXPECTED[name]


def test_no_domain_is_an_error_and_an_unknown_code_stopped():
    assert states.vm_state(None) == "error"
    assert states.vm_state(states.DOMAIN_OTHER) == "stopped"
    assert set(hypervisor._STATES) == {
        getattr(libvirt, f"VIR_DOMAIN_{n.upper()}") for n in LIBVIRT_STATES
    }


def _python_files():
    return [p for p in APP.rglob("*.py") if p not in EXEMPT]


def test_no_other_module_maps_domain_states():
    """The former copies (monitor, re-check, migration, power actions) now all call vm_state:
    no module but app/states names the adapter's own words or libvirt's state constants."""
    constants = re.compile(r"VIR_DOMAIN_(" + "|".join(n.upper() for n in LIBVIRT_STATES) + r")\b")
    for path in _python_files():
        text = path.read_text()
        assert not constants.search(text), f"{path}: libvirt domain states outside app/states"
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Constant) and node.value in ("paused", "shutoff"):
                pytest.fail(f"{path}:{node.lineno}: domain state {node.value!r} outside app/states")


# --- the scan ---


def _words_in(node):
    """The state words among a collection literal's string elements (a dict's keys)."""
    items = node.keys if isinstance(node, ast.Dict) else node.elts
    return [e.value for e in items if isinstance(e, ast.Constant) and e.value in states.WORDS]


def python_definitions(text):
    """(line, words) of each collection literal in Python source holding 2+ state words."""
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set, ast.Dict)):
            words = _words_in(node)
            if len(words) >= 2:
                found.append((node.lineno, words))
    return found


QUOTED = re.compile(r"""['"]([a-z_]+)['"]""")
GROUP = re.compile(r"[\(\[\{]([^()\[\]{}]*)[\)\]\}]")
COMPARED = re.compile(
    r"""(?:state|status|State\(\))\s*(?:==|!=|===|!==)\s*['"]([a-z_]+)['"]"""
    r"""|['"]([a-z_]+)['"]\s*\|\s*status_badge"""
)


def text_definitions(text):
    """Groups ((...), [...], {...}) in a template or script holding 2+ quoted state words."""
    found = []
    for group in GROUP.finditer(text):
        words = [w for w in QUOTED.findall(group.group(1)) if w in states.WORDS]
        words += [w for w in re.findall(r"\b([a-z_]+)\s*:", group.group(1)) if w in states.WORDS]
        if len(words) >= 2:
            found.append(group.group(0))
    return found


def unknown_words(text):
    """Words a template or script compares a state or status with that the module lacks."""
    return [
        word
        for pair in COMPARED.findall(text)
        for word in pair
        if word and word not in states.WORDS
    ]


def test_the_scan_catches_what_it_must():
    assert python_definitions('X = ("running", "stopped")\n') == [(1, ["running", "stopped"])]
    assert python_definitions('C = {"ready": "success", "error": "danger"}\n')
    assert not python_definitions('if vm["state"] == "running":\n    pass\n')
    assert text_definitions("{% if host.state in ('ready', 'error') %}")
    assert text_definitions('const ACTIVE = ["pending", "running"];')
    assert text_definitions('const c = { running: "success", failed: "danger" };')
    assert not text_definitions("{% if host.state in states.HOST_DRAINABLE %}")
    assert unknown_words("{% if vm.state == 'paused' %}") == ["paused"]
    assert unknown_words('if (vmState() !== "hibernated") {') == ["hibernated"]
    assert not unknown_words("{{ 'pending'|status_badge }} {% if vm.state == 'running' %}")


def test_python_defines_no_state_words_outside_the_module():
    found = {
        f"{path.relative_to(ROOT)}:{line}": words
        for path in _python_files()
        for line, words in python_definitions(path.read_text())
    }
    assert not found


def test_repositories_sql_quotes_no_state_word():
    quoted = re.compile(r"'(" + "|".join(sorted(states.WORDS)) + r")'")
    found = []
    for path in (APP / "repositories").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found += [f"{path.name}:{node.lineno}" for _ in quoted.finditer(node.value)]
    assert not found


def _templates_and_scripts():
    templates = list((APP / "templates").rglob("*.html"))
    scripts = [p for p in (ROOT / "static").glob("*.js")]
    return templates + scripts


def test_templates_and_scripts_define_no_state_words():
    found = {
        str(path.relative_to(ROOT)): groups
        for path in _templates_and_scripts()
        if (groups := text_definitions(path.read_text()))
    }
    assert not found


def test_templates_and_scripts_name_only_known_states():
    found = {
        str(path.relative_to(ROOT)): words
        for path in _templates_and_scripts()
        if (words := unknown_words(path.read_text()))
    }
    assert not found


def test_the_apis_enums_are_the_modules_words(app):
    """The API lists the states Nube records (no 'paused': a paused domain's VM is running)."""
    schemas = app.test_client().get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    assert schemas["Vm"]["properties"]["state"]["enum"] == list(states.VM)
    assert schemas["Host"]["properties"]["state"]["enum"] == list(states.HOST)
    assert schemas["HostUpdate"]["properties"]["state"]["enum"] == list(
        states.HOST_OPERATOR_SETTABLE
    )
    assert schemas["Host"]["properties"]["share"]["enum"] == list(states.SHARE)
    assert schemas["User"]["properties"]["role"]["enum"] == list(states.ROLE)
