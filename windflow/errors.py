"""Exceptions that services raise for a user's mistake: views turn them into form errors,
the API into a 4xx JSON body, commands into a message. Never a 500."""


class ServiceError(Exception):
    """The request cannot be carried out as asked; the message says why, for the user."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code


class Conflict(ServiceError):
    status_code = 409
    code = "conflict"


class Forbidden(ServiceError):
    status_code = 403
    code = "permission_denied"
