"""Exceptions that services raise for a user's mistake or a refusal: views turn them into
form errors or the 403 page, the API into a 4xx JSON body, commands into a message. Never
a 500.

`ServiceError` (the request cannot be carried out as asked) and `Forbidden` (the person may
not do it) are siblings: catching one never catches the other, so a view says which it
handles. Both carry a message for the user, an optional field and a machine code."""


class UserError(Exception):
    """The common shape of ServiceError and Forbidden; catch one of those, not this."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code


class ServiceError(UserError):
    """The request cannot be carried out as asked; the message says why, for the user."""


class Conflict(ServiceError):
    status_code = 409
    code = "conflict"


class Forbidden(UserError):
    """The person may not do this; the message names the role or the rule that refuses."""

    status_code = 403
    code = "permission_denied"
