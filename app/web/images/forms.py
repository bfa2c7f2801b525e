"""Forms of the images blueprint."""

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import StringField, SubmitField
from wtforms.validators import Length, Optional


class UploadForm(FlaskForm):
    """Upload a base image into the repository."""

    file = FileField("Image file (qcow2 or raw)", validators=[FileRequired()])
    name = StringField(
        "Name",
        validators=[Optional(), Length(max=128)],
        description="Defaults to the file's name; keep the extension.",
    )
    description = StringField("Description", validators=[Optional(), Length(max=500)])
    submit = SubmitField("Upload")
