"""Forms of the networks blueprint."""

from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Optional

from ...ipam import check_cidr, check_dns
from ...net_rules import DEFAULT_RULES, SYNTAX, as_text, check_rules
from ...services.networks import MTU_MAX, MTU_MIN, check_name
from ..rules import Checked

RULES_HELP = (
    f"One rule a line: {SYNTAX}. Only the traffic a rule lets in reaches the VMs (replies to"
    " their own connections always do); empty: nothing else gets in."
)


def rules_text(rules):
    """Rules as the textarea shows them: one line each."""
    return "\n".join(as_text(rule) for rule in rules)


def rules_field(default=None):
    """The textarea of a network's rules, checked by the service's own check."""
    return TextAreaField(
        "Rules (inbound)",
        default=default,
        validators=[Optional(), Checked(check_rules)],
        render_kw={"rows": 5, "class": "font-monospace", "spellcheck": "false"},
        description=RULES_HELP,
    )


TYPE_CHOICES = [
    ("vxlan", "VXLAN: an overlay across the hosts"),
    ("bridge", "Bridge: the hosts' existing bridge (a LAN)"),
]


class NetworkForm(FlaskForm):
    """Define a network; the route fills the project and type choices (the types the viewer
    may make). Field names are addNetwork's keys."""

    name = StringField(
        "Name",
        validators=[DataRequired(), Checked(check_name)],
        render_kw={"maxlength": 40, "autocomplete": "off"},
        description="At most 40 letters, digits, '_', '.', '-'.",
    )
    type = SelectField("Type", default="vxlan")  # the route fills the choices
    cidr = StringField(
        "CIDR",
        validators=[DataRequired(), Checked(check_cidr)],
        render_kw={"placeholder": "10.20.0.0/24", "autocomplete": "off"},
        description="A private IPv4 range, /16 to /29.",
    )
    gateway = StringField(
        "Gateway",
        validators=[Optional()],
        render_kw={"placeholder": "10.20.0.1", "autocomplete": "off"},
        description="An address of the CIDR the guests route through; empty: none.",
    )
    dns = StringField(
        "DNS servers",
        validators=[Optional(), Checked(check_dns)],
        render_kw={"placeholder": "10.20.0.1, 1.1.1.1", "autocomplete": "off"},
        description="Up to 3 IPv4 addresses, comma-separated.",
    )
    range = StringField(
        "Address range",
        validators=[Optional()],
        render_kw={"placeholder": "10.20.0.10-10.20.0.200", "autocomplete": "off"},
        description="FIRST-LAST: the addresses Nube hands out. Empty: the whole CIDR but the"
        " gateway.",
    )
    bridge = StringField(
        "Host bridge",
        validators=[Optional()],
        render_kw={"placeholder": "br0", "autocomplete": "off"},
        description="Type bridge only: the bridge every host already has.",
    )
    mtu = IntegerField(
        "MTU",
        validators=[Optional()],
        render_kw={"min": MTU_MIN, "max": MTU_MAX},
        description="Empty: 1450 for VXLAN (the hosts' 1500 less its headers).",
    )
    # the service checks the choice (a member's own projects only); none: the default one
    project = SelectField(
        "Project",
        validators=[Optional()],
        validate_choice=False,
        description="Its VMs may use the network.",
    )
    rules = rules_field(default=rules_text(DEFAULT_RULES))
    submit = SubmitField("Create network")


class RulesForm(FlaskForm):
    """Replace a network's rules; the route pre-fills them as text."""

    rules = rules_field()
    submit = SubmitField("Apply rules")


class RemoveForm(FlaskForm):
    """Remove a network: the operator types its name to confirm."""

    confirm = StringField("Type the network's name to confirm", validators=[DataRequired()])
    submit = SubmitField("Remove network")
