"""Forms of the projects blueprint."""

from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from ...services.projects import DESCRIPTION_MAX, QUOTA_MAX

QUOTA_RANGE = NumberRange(min=0, max=QUOTA_MAX)


class ProjectForm(FlaskForm):
    """Create or change a project: a blank quota means no limit."""

    name = StringField("Name", validators=[DataRequired(), Length(max=63)])
    description = StringField("Description", validators=[Optional(), Length(max=DESCRIPTION_MAX)])
    quota_vms = IntegerField("VMs", validators=[Optional(), QUOTA_RANGE])
    quota_vcpus = IntegerField("vCPUs", validators=[Optional(), QUOTA_RANGE])
    quota_mem = IntegerField("Memory (MiB)", validators=[Optional(), QUOTA_RANGE])
    quota_disk = IntegerField("Disk (GiB)", validators=[Optional(), QUOTA_RANGE])
    submit = SubmitField("Save")

    def data_for_service(self):
        """What the projects service takes from this form."""
        return {
            "name": self.name.data.strip(),
            "description": (self.description.data or "").strip(),
            "quota": {key: self[f"quota_{key}"].data for key in ("vms", "vcpus", "mem", "disk")},
        }


class MemberForm(FlaskForm):
    """Add a user to a project."""

    user = SelectField("User", validators=[DataRequired()])
    submit = SubmitField("Add member")


class RemoveForm(FlaskForm):
    """An empty form: a removal is a POST with a CSRF token."""

    submit = SubmitField("Remove")
