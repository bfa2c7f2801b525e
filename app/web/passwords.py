"""The password lengths every form checks: the users service's rule, with its message, so a
form, the API and the service answer the same input the same way."""

from wtforms.validators import Length

from ..limits import PASSWORD_MAX, PASSWORD_MESSAGE, PASSWORD_MIN, SENT_PASSWORD_MESSAGE

# a password being set: the whole rule
NEW_PASSWORD = Length(min=PASSWORD_MIN, max=PASSWORD_MAX, message=PASSWORD_MESSAGE)
# a password being proved (login, the current one): none longer can exist
SENT_PASSWORD = Length(max=PASSWORD_MAX, message=SENT_PASSWORD_MESSAGE)
