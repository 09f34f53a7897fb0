"""Exceptions that services raise for a user's mistake or a refusal: views turn them into
form errors or the 403 page, the API into a 4xx JSON body, commands into a message. Never
a 500.

`ServiceError` (the request cannot be carried out as asked), `Forbidden` (the person may
not do it) and `NotFound` (no such object for this person) are siblings: catching one never
catches another, so a view says which it handles. Each carries a message for the user, an
optional field and a machine code."""


class UserError(Exception):
    """The common shape of ServiceError, Forbidden and NotFound; catch one of those, not
    this."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code

    @property
    def field_messages(self) -> dict[str, list[str]]:
        """Each field named -> its messages, for a form or the API's ``fields`` (the one
        message on `field`, unless a subclass has several)."""
        return {self.field: [self.message]} if self.field else {}


class ServiceError(UserError):
    """The request cannot be carried out as asked; the message says why, for the user."""


class Conflict(ServiceError):
    status_code = 409
    code = "conflict"


class Forbidden(UserError):
    """The person may not do this; the message names the role or the rule that refuses."""

    status_code = 403
    code = "permission_denied"


class NotFound(UserError):
    """No such object for this person: a missing object and another organisation's look the
    same (the access helpers, e.g. apps.stacks.services.get_stack_for, raise it). Pages
    answer 404, the API a 404 body ("Not found." unless a message says more), websockets
    close with 4404."""

    status_code = 404
    code = "not_found"

    def __init__(self, message: str = "", **kwargs):
        super().__init__(message, **kwargs)
