"""Forms of the auth blueprint."""

from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, EqualTo, Length

from ...limits import USERNAME_MAX
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
