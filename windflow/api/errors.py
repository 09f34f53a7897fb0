"""One error body for every 4xx of the API:

{"error": {"status": 400, "code": "invalid", "message": "...", "fields": {"name": ["..."]}}}
"""

import json

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from windflow.errors import Forbidden, NotFound, ServiceError
from windflow.redaction import redact


def error_body(
    status_code: int, code: str, message: str, fields: dict | None = None, problems=None
) -> dict:
    """Secret values in scope never reach a client through an error message. `problems`:
    a refused compose project's findings (Problem.as_dict(), with file and line)."""
    body = {"status": status_code, "code": code, "message": redact(message)}
    if fields:
        body["fields"] = json.loads(redact(json.dumps(fields, default=str)))
    if problems:
        body["problems"] = json.loads(redact(json.dumps(problems, default=str)))
    return {"error": body}


def _translate(exc):
    if isinstance(exc, Forbidden):  # a refusal: always 403, whatever field it names
        return exceptions.PermissionDenied(exc.message), exc.code
    if isinstance(exc, NotFound):  # the access helpers: no such object for this person
        return exceptions.NotFound(exc.message or None), exc.code
    if isinstance(exc, ServiceError):
        if exc.field:
            return exceptions.ValidationError(exc.field_messages), exc.code
        api_exc = exceptions.APIException(exc.message)
        api_exc.status_code = exc.status_code
        return api_exc, exc.code
    if isinstance(exc, DjangoValidationError):
        detail = (
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
        return exceptions.ValidationError(detail), "invalid"
    if isinstance(exc, Http404):
        return exceptions.NotFound(), "not_found"
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied(str(exc) or None), "permission_denied"
    return exc, None


def exception_handler(exc, context):
    original = exc
    exc, code = _translate(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real server error: let Django log it and answer 500
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    if isinstance(exc, exceptions.ValidationError):
        fields = detail if isinstance(detail, dict) else {"non_field_errors": detail}
        message = "The request is not valid; see the fields."
        if isinstance(original, ServiceError):
            message = original.message  # the service's own words (a CLI prints them)
        problems = [p.as_dict() for p in (getattr(original, "problems", None) or ())[:50]]
        response.data = error_body(
            response.status_code, code or "invalid", message, fields, problems
        )
    else:
        default_code = getattr(detail, "code", None) or exc.default_code
        response.data = error_body(response.status_code, code or default_code, str(detail))
    return response


def json_error(status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(status_code, code, message), status=status_code)


def not_found(request, exception=None):
    return json_error(status.HTTP_404_NOT_FOUND, "not_found", "No such API endpoint.")


__all__ = ["Response", "error_body", "exception_handler", "json_error"]
