"""Forms of the users blueprint."""

from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, EqualTo, Regexp

from ... import states
from ...limits import USERNAME_MESSAGE, USERNAME_RE
from ...services.users import ROLES
from ..passwords import NEW_PASSWORD

ROLE_CHOICES = list(ROLES)  # plain values: tuples are deprecated in WTForms 3.3


class UserForm(FlaskForm):
    """Add a user."""

    username = StringField(
        "User name", validators=[DataRequired(), Regexp(USERNAME_RE, message=USERNAME_MESSAGE)]
    )
    role = SelectField("Role", choices=ROLE_CHOICES, default=states.OPERATOR)
    password = PasswordField("Password", validators=[DataRequired(), NEW_PASSWORD])
    confirm = PasswordField(
        "Repeat password", validators=[DataRequired(), EqualTo("password", "Passwords differ")]
    )
    submit = SubmitField("Add user")


class RoleForm(FlaskForm):
    """Change a user's role."""

    role = SelectField("Role", choices=ROLE_CHOICES)
    submit = SubmitField("Change role")


class ResetPasswordForm(FlaskForm):
    """Set another user's password."""

    password = PasswordField("New password", validators=[DataRequired(), NEW_PASSWORD])
    confirm = PasswordField(
        "Repeat new password", validators=[DataRequired(), EqualTo("password", "Passwords differ")]
    )
    submit = SubmitField("Reset password")


class RemoveForm(FlaskForm):
    """An empty form: removing a user is a POST with a CSRF token."""

    submit = SubmitField("Remove")
