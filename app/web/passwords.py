"""The password lengths every form checks: the users service's rule, with its message, so a
form, the API and the service answer the same input the same way."""

from wtforms.validators import Length

from ..services.users import MIN_PASSWORD, PASSWORD_MAX, PASSWORD_RULE

# a password being set: the whole rule
NEW_PASSWORD = Length(min=MIN_PASSWORD, max=PASSWORD_MAX, message=f"must be {PASSWORD_RULE}")
# a password being proved (login, the current one): none longer can exist
SENT_PASSWORD = Length(max=PASSWORD_MAX, message=f"must be at most {PASSWORD_MAX} characters long")
