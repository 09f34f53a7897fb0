"""A deleted stack takes its Git deploy key with it: the private half (a server credential)
is not left behind in the secrets backend."""

from django.db.models.signals import post_delete
from django.dispatch import receiver

from apps.secrets import services as secrets
from apps.secrets.models import SecretRef

from .models import GitSource


@receiver(post_delete, sender=GitSource, dispatch_uid="sources.forget_deploy_key")
def forget_deploy_key(sender, instance: GitSource, **kwargs) -> None:
    if instance.deploy_key_id is None:
        return
    credential = SecretRef.server_credentials.filter(pk=instance.deploy_key_id).first()
    if credential is not None:
        secrets.forget_server_credential(credential)
