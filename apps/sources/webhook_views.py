"""Push to deploy, the pages (issue 13): the public webhook endpoint that providers post to,
and the stack's webhook page (URL, secret shown once when made or rotated, deliveries)."""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apps.accounts import permissions
from apps.stacks.services import get_stack_for
from windflow.api.errors import error_body
from windflow.api.throttling import FixedWindowThrottle
from windflow.context import ActorContext, acting
from windflow.views import ObjectView, wants_partial

from . import webhooks


class WebhookThrottle(FixedWindowThrottle):
    """Deliveries per client address and stack (a provider sends far fewer)."""

    scope = "webhook"
    rate = webhooks.RATE

    def get_cache_key(self, request, view):
        return f"{view.kwargs['uid']}:{self.get_ident(request)}"


class _Hook:
    def __init__(self, uid):
        self.kwargs = {"uid": uid}


def _error(status: int, code: str, message: str, delivery=None) -> JsonResponse:
    """The API's error body, with the verdict (and the delivery recorded, if any)."""
    body = error_body(status, code, message)
    body["verdict"] = code
    if delivery is not None and delivery.pk:
        body["delivery"] = delivery.pk
    return JsonResponse(body, status=status)


@csrf_exempt  # providers sign the body; there is no session here
@require_POST
def webhook(request, uid):
    """POST /hooks/git/<stack uid>/ on the organisation's host: a delivery from GitHub,
    GitLab, Bitbucket or Gitea/Forgejo (told apart by their headers). JSON answers only."""
    throttle = WebhookThrottle()
    if not throttle.allow_request(request, _Hook(uid)):
        return _error(429, "throttled", _("Too many deliveries: try again in a minute."))
    stack = webhooks.find_stack(uid)
    if stack is None or getattr(stack, "webhook_endpoint", None) is None:
        return _error(404, "not_found", _("No webhook here."))
    # A body over Django's upload limit (2.5 MB by default; GitHub sends at most the 20 last
    # commits of a push) is refused unread.
    length = request.META.get("CONTENT_LENGTH") or "0"
    too_big = _error(413, "too_large", _("The delivery is too large."))
    if not length.isdigit() or int(length) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        return too_big
    try:
        body = request.body
    except RequestDataTooBig:
        return too_big
    with acting(ActorContext(request=request, system_label="webhook")):
        answer = webhooks.receive(stack, request.headers, body)
    if answer.status >= 400:
        response = _error(answer.status, answer.verdict, answer.detail)
        if answer.delivery is not None and answer.delivery.pk:
            response.content = (
                response.content[:-1] + f', "delivery": {answer.delivery.pk}}}'.encode()
            )
        return response
    return JsonResponse(answer.body(), status=answer.status)


webhook.action = permissions.NO_ROLE  # the provider's signature is the proof, not a role


class StackWebhookView(ObjectView):
    """The stack's webhook: its URL, a button that makes (or rotates) the secret and shows
    it once, and the deliveries (the HTMX partial of the same URL)."""

    get_object_for = staticmethod(get_stack_for)
    lookup_url_kwarg = "name"
    action = "stack.view"
    method_actions = {"post": "stack.change"}

    def context(self, stack, **extra):
        endpoint = getattr(stack, "webhook_endpoint", None)
        return {
            "object": stack,
            "endpoint": endpoint,
            "url": webhooks.webhook_url(stack),
            "deliveries": webhooks.deliveries_of(stack),
            "source": getattr(stack, "git_source", None),
            "can_change": permissions.can(self.membership, "stack.change")
            and permissions.can_deploy_to(self.membership, stack.environment),
            **extra,
        }

    def get(self, request, name):
        stack = self.get_object()
        if wants_partial(request):
            return render(request, "sources/htmx/webhook_deliveries.html", self.context(stack))
        return render(request, "sources/stack_webhook.html", self.context(stack))

    def post(self, request, name):
        stack = self.get_object()
        secret = webhooks.rotate_secret(self.membership, stack)  # Forbidden: the 403 page
        messages.success(request, _("Copy the secret now: it is not shown again."))
        stack.refresh_from_db()
        return render(request, "sources/stack_webhook.html", self.context(stack, secret=secret))
