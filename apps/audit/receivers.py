"""Sign-in events come from Django's auth signals (they are not model signals: no state of
ours changes). Each lands in the chain of the host where it happened."""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from . import services


@receiver(user_logged_in)
def record_login(sender, request, user, **kwargs):
    services.record("auth.login", obj=user, actor=user)


@receiver(user_logged_out)
def record_logout(sender, request, user, **kwargs):
    if user is not None:
        services.record("auth.logout", obj=user, actor=user)


@receiver(user_login_failed)
def record_login_failed(sender, credentials, request=None, **kwargs):
    # Never the password: only which account was tried.
    attempted = credentials.get("email") or credentials.get("username") or credentials.get("login")
    services.record(
        "auth.login_failed",
        object_type="user",
        object_label=str(attempted or "")[:200],
        changes={"login": str(attempted or "")[:254]},
    )
