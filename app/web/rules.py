"""WTForms validators built from app.limits and the services' own checks: a form refuses what
the service refuses, with the service's message, before anything is written."""

from wtforms.validators import Length, NumberRange, ValidationError

from ..errors import InvalidInput


def within(bounds):
    """A number field's validators: below and above its Bounds, each with their message."""
    return [
        NumberRange(min=bounds.minimum, message=bounds.too_small),
        NumberRange(max=bounds.maximum, message=bounds.too_large),
    ]


def at_most(maximum, message):
    """A text field's longest length, with the service's message."""
    return Length(max=maximum, message=message)


class Checked:
    """Run a service's check on a filled-in field; its InvalidInput is the field's error."""

    def __init__(self, check, strip=True):
        self.check = check
        self.strip = strip

    def __call__(self, form, field):
        """Check the field's data (stripped, as the route sends it, unless strip=False)."""
        value = field.data
        if isinstance(value, str) and self.strip:
            value = value.strip()
        if value in (None, ""):
            return
        try:
            self.check(value)
        except InvalidInput as error:
            raise ValidationError(str(error)) from None
