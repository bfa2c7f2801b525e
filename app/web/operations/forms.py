"""Forms of the operations blueprint."""

from flask_wtf import FlaskForm
from wtforms import SubmitField


class CancelForm(FlaskForm):
    """An empty form: cancelling is a POST with a CSRF token."""

    submit = SubmitField("Cancel operation")
