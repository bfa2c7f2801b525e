"""Forms of the tokens blueprint."""

from datetime import UTC, datetime, timedelta

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    PasswordField,
    SelectField,
    StringField,
    SubmitField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Optional

from ...limits import TOKEN_NAME_MAX, TOKEN_NAME_MESSAGE
from ..passwords import SENT_PASSWORD
from ..rules import at_most

NEVER = "never"
EXPIRY_CHOICES = [
    SelectChoice(NEVER, "Never"),
    SelectChoice("30", "30 days"),
    SelectChoice("90", "90 days"),
    SelectChoice("365", "1 year"),
]


class TokenForm(FlaskForm):
    """Create a token for oneself."""

    name = StringField(
        "Name",
        validators=[DataRequired(), at_most(TOKEN_NAME_MAX, TOKEN_NAME_MESSAGE)],
        description="What it is for, e.g. the machine or script that uses it.",
        render_kw={"autocomplete": "off"},
    )
    expiry = SelectField("Expires", choices=EXPIRY_CHOICES, default="90")
    expires_on = DateField(
        "Or on this date",
        validators=[Optional()],
        description="Optional; wins over the choice above. The token ends at the end of that"
        " day (UTC).",
    )
    password = PasswordField(
        "Your password",
        validators=[DataRequired(), SENT_PASSWORD],
        description="A token acts as you: a session alone cannot make one.",
        render_kw={"autocomplete": "current-password"},
    )
    submit = SubmitField("Create token")

    def expires_at(self):
        """The last day the token works (a date), or None when it never expires."""
        if self.expires_on.data:
            return self.expires_on.data
        if self.expiry.data == NEVER:
            return None
        return datetime.now(UTC).date() + timedelta(days=int(self.expiry.data))


class RevokeForm(FlaskForm):
    """Revoke a token: a ticked box confirms it, no script needed."""

    confirm = BooleanField("Sure", validators=[DataRequired()])
    submit = SubmitField("Revoke")
