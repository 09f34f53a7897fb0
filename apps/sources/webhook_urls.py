"""URLs of push to deploy: the public webhook (namespace "hooks", under /hooks/) and the
stack's webhook page (namespace "webhooks", under /stacks/)."""

from django.urls import path

from . import webhook_views

hook_patterns = [path("git/<uuid:uid>/", webhook_views.webhook, name="git")]

page_patterns = [
    path("<str:name>/webhook/", webhook_views.StackWebhookView.as_view(), name="stack_webhook"),
]
