"""What a deleted stack takes with it: its Git deploy key (the private half, a server
credential, is not left in the secrets backend) and the uploaded archives that no other
stack's revision uses."""

from django.db.models.signals import post_delete, pre_delete
from django.dispatch import receiver

from apps.secrets import services as secrets
from apps.secrets.models import SecretRef
from apps.stacks.models import Stack, StackRevision

from .models import GitSource, SourceArchive


@receiver(post_delete, sender=GitSource, dispatch_uid="sources.forget_deploy_key")
def forget_deploy_key(sender, instance: GitSource, **kwargs) -> None:
    if instance.deploy_key_id is None:
        return
    credential = SecretRef.server_credentials.filter(pk=instance.deploy_key_id).first()
    if credential is not None:
        secrets.forget_server_credential(credential)


@receiver(pre_delete, sender=Stack, dispatch_uid="sources.note_archives")
def note_archives(sender, instance: Stack, **kwargs) -> None:
    instance._archive_digests = set(
        instance.revisions.exclude(archive_digest="").values_list("archive_digest", flat=True)
    )


@receiver(post_delete, sender=Stack, dispatch_uid="sources.drop_unused_archives")
def drop_unused_archives(sender, instance: Stack, **kwargs) -> None:
    digests = getattr(instance, "_archive_digests", set())
    if not digests:
        return
    used = set(
        StackRevision.objects.filter(archive_digest__in=digests).values_list(
            "archive_digest", flat=True
        )
    )
    SourceArchive.objects.filter(digest__in=digests - used).delete()
