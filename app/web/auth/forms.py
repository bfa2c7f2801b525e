"""Forms of the auth blueprint."""

from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, EqualTo, Length

from ...cloudinit import SSH_KEY_MAX
from ...limits import USERNAME_MAX
from ...services.user_keys import NAME_MAX
from ..passwords import NEW_PASSWORD, SENT_PASSWORD


class LoginForm(FlaskForm):
    """User name and password."""

    username = StringField("User", validators=[DataRequired(), Length(max=USERNAME_MAX)])
    password = PasswordField("Password", validators=[DataRequired(), SENT_PASSWORD])
    submit = SubmitField("Log in")


class PasswordForm(FlaskForm):
    """Change one's own password."""

    current = PasswordField("Current password", validators=[DataRequired(), SENT_PASSWORD])
    new = PasswordField("New password", validators=[DataRequired(), NEW_PASSWORD])
    confirm = PasswordField(
        "Repeat new password", validators=[DataRequired(), EqualTo("new", "Passwords differ")]
    )
    submit = SubmitField("Change password")


class KeyForm(FlaskForm):
    """Keep an SSH public key under a name."""

    name = StringField("Name", validators=[DataRequired(), Length(max=NAME_MAX)])
    public_key = TextAreaField(
        "Public key",
        validators=[DataRequired(), Length(max=SSH_KEY_MAX)],
        render_kw={"rows": 3, "spellcheck": "false", "placeholder": "ssh-ed25519 AAAA… you@laptop"},
        description="The contents of your .pub file (never the private key).",
    )
    submit = SubmitField("Add key")


class RemoveKeyForm(FlaskForm):
    """An empty form: forgetting a key is a POST with a CSRF token."""
