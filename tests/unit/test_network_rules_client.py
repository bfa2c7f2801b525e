"""`nube network create --rule`, `nube network rules` and the rules in `nube network show`,
against the app served on loopback as in test_client.py: the parser, the output, the exit codes
of refusals, and the rules the controller stored."""

import re

import pytest

from app.client import parser as client_parser
from tests.factories import gen_image, gen_prepared_host
from tests.unit import test_client

# test_client.py's fixtures: the client in-process, the served app, logged in with a token
nube = test_client.nube
served = test_client.served
token = test_client.token
logged_in = test_client.logged_in


def stored_rules(app, name):
    """A network's rules as app.core shows them."""
    from app import core

    with app.app_context():
        return core.listNetworks(f"name = {name}")[0]["rules"]


def parse(*argv):
    """The parsed arguments of a command line."""
    return client_parser.build_parser().parse_args(list(argv))


def test_the_parser_collects_rules_and_refuses_rules_with_none():
    args = parse("network", "rules", "net1", "--rule", "tcp/22", "--rule", "icmp from any")
    assert (args.name, args.rules, args.none, args.wait) == (
        "net1",
        ["tcp/22", "icmp from any"],
        False,
        False,
    )
    assert parse("network", "rules", "net1", "--none", "--wait").none
    assert parse("network", "create", "n", "--cidr", "10.0.0.0/24").rules is None
    with pytest.raises(SystemExit) as both:
        parse("network", "rules", "net1", "--rule", "tcp/22", "--none")
    assert both.value.code == 2


def test_create_with_rules_or_the_defaults_and_show_them_as_text(nube, logged_in, app):
    made = nube(
        "network", "create", "web", "--cidr", "10.20.0.0/24",
        "--rule", "tcp/443 from any", "--rule", "udp/5000-5010 from 10.0.0.0/8",
    )  # fmt: skip
    assert made.code == 0, made.err
    assert re.search(
        r"^rules: +tcp/443 from any\n +udp/5000-5010 from 10\.0\.0\.0/8$", made.out, re.M
    )
    assert stored_rules(app, "web") == [
        {"protocol": "tcp", "ports": "443", "source": "any"},
        {"protocol": "udp", "ports": "5000-5010", "source": "10.0.0.0/8"},
    ]
    assert nube("network", "create", "plain", "--cidr", "10.30.0.0/24").code == 0
    shown = nube("network", "show", "plain")
    assert shown.code == 0
    assert re.search(r"^rules: +any from network\n +tcp/22 from any\n", shown.out, re.M)
    as_json = nube("-o", "json", "network", "show", "plain").json()
    assert as_json["rules"][1] == {"protocol": "tcp", "ports": "22", "source": "any"}
    bad = nube("network", "create", "bad", "--cidr", "10.40.0.0/24", "--rule", "tcp/0")
    assert bad.code == 3 and "rules[0]: ports must be from 1 to 65535" in bad.err
    assert nube("network", "show", "bad").code == 5


def test_network_rules_replaces_them_and_follows_the_operation(nube, logged_in, app):
    gen_prepared_host(app)
    image = gen_image(app)
    assert nube("network", "create", "net1", "--cidr", "10.20.0.0/24").code == 0
    made = nube("vm", "create", "web1", "--image", image, "--mem", "64", "--network", "net1")
    assert made.code == 0, made.err
    run = nube("network", "rules", "net1", "--rule", "tcp/80", "--rule", "TCP/443", "--wait")
    assert run.code == 0, run.err
    assert re.search(r"operation \d+ \(network\.rules\) succeeded", run.out)
    assert stored_rules(app, "net1") == [
        {"protocol": "tcp", "ports": "80", "source": "any"},
        {"protocol": "tcp", "ports": "443", "source": "any"},
    ]
    queued = nube("network", "rules", "net1", "--none")
    assert queued.code == 0 and re.search(r"nube op show \d+ --follow", queued.out)
    assert stored_rules(app, "net1") == []
    shown = nube("network", "show", "net1")
    assert re.search(r"^rules: +none: replies only$", shown.out, re.M)


def test_network_rules_refusals(nube, logged_in, app):
    assert nube("network", "create", "net1", "--cidr", "10.20.0.0/24").code == 0
    neither = nube("network", "rules", "net1")
    assert neither.code == 2 and "--rule RULE (repeatable), or --none" in neither.err
    bad = nube("network", "rules", "net1", "--rule", "tcp/22 to any")
    assert bad.code == 3 and "does not read PROTOCOL" in bad.err
    assert nube("network", "rules", "nope", "--none").code == 5
    assert stored_rules(app, "net1") == [
        {"protocol": "any", "source": "network"},
        {"protocol": "tcp", "ports": "22", "source": "any"},
    ]
