"""Forms of the operations blueprint."""

from flask_wtf import FlaskForm
from wtforms import SubmitField


class OperationActionForm(FlaskForm):
    """An empty form: cancel, retry and re-check are each a POST with a CSRF token."""

    submit = SubmitField("Cancel operation")
