"""Revocation that no write path can skip.

The services revoke what they change, but people, memberships and tokens are also changed by
the Django admin, by a queryset's `delete()` and by cascades (an organisation or a user
deleted). These model signals run on every one of those paths: they clear the request cache
(windflow.hotcache) and take away the credentials that a change ends.

- a membership removed, from anywhere: the member's personal tokens in that organisation are
  deleted (a member who rejoins starts with none) and their JWT sign-ins there go with the
  membership (TokenFamily cascades);
- a member made viewer: their write tokens become read-only (a viewer may not hold one);
- a membership changed: the cache entries of the member's tokens there go too (each token is
  cached with its holder's membership);
- a person saved (deactivated, new password, new e-mail...): every cached token and
  membership that carries them is dropped, so the next request sees the new state;
- open websockets of the person check their access again (apps.accounts.revocation);
- an organisation or one of its domains saved or deleted: the host -> organisation entries
  are dropped (the cache's other tenant; its services clear them too).

`QuerySet.update()` and raw SQL send no signal; the services never use them on these rows
without clearing the cache themselves, and the cache's TTL bounds the rest.
"""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from windflow import hotcache

from . import revocation
from .choices import Role, TokenScope
from .models import ApiToken, Membership, SupportAccess, TokenFamily, User
from .services import support_key

# Saves that change nothing a credential check reads.
_IRRELEVANT_USER_FIELDS = {"last_login"}


def _token_keys(**filters) -> list[str]:
    hashes = ApiToken.objects.filter(**filters).values_list("token_hash", flat=True)
    return [hotcache.token_key(token_hash) for token_hash in hashes]


@receiver(post_save, sender=User, dispatch_uid="accounts.user_saved")
def user_saved(sender, instance, created, update_fields=None, **kwargs):
    if created or (update_fields and set(update_fields) <= _IRRELEVANT_USER_FIELDS):
        return
    organizations = Membership.objects.filter(user=instance).values_list(
        "organization_id", flat=True
    )
    keys = [hotcache.membership_key(instance.pk, org_id) for org_id in organizations]
    hotcache.forget_on_commit(*keys, *_token_keys(user=instance))
    revocation.notify_on_commit(instance.pk)


@receiver(post_save, sender=Membership, dispatch_uid="accounts.membership_saved")
def membership_saved(sender, instance, created, **kwargs):
    pair = {"user_id": instance.user_id, "organization_id": instance.organization_id}
    keys = [hotcache.membership_key(instance.user_id, instance.organization_id)]
    if created:
        # Nothing of an earlier membership comes back (rows left by a path without signals).
        ApiToken.objects.filter(**pair).delete()
    else:
        # The pair's tokens are cached together with this membership
        # (services.resolve_api_token): a new role is seen by the next request of each.
        keys += _token_keys(**pair)
        if instance.role == Role.VIEWER:
            ApiToken.objects.filter(**pair, scope=TokenScope.WRITE).update(scope=TokenScope.READ)
    hotcache.forget_on_commit(*keys)
    if not created:
        revocation.notify_on_commit(instance.user_id)


@receiver(post_delete, sender=Membership, dispatch_uid="accounts.membership_deleted")
def membership_deleted(sender, instance, **kwargs):
    # Each token's own post_delete clears its cache entry.
    ApiToken.objects.filter(
        user_id=instance.user_id, organization_id=instance.organization_id
    ).delete()
    hotcache.forget_on_commit(hotcache.membership_key(instance.user_id, instance.organization_id))
    revocation.notify_on_commit(instance.user_id)


@receiver(post_save, sender=SupportAccess, dispatch_uid="accounts.support_access_saved")
def support_access_saved(sender, instance, created, **kwargs):
    """The organisation's banner is read again; an access that ended or expired: its staff
    member's sockets check again."""
    hotcache.forget_on_commit(support_key(instance.organization_id))
    if not created and (instance.ended_at is not None or instance.end_recorded):
        revocation.notify_on_commit(instance.staff_id)


@receiver(post_save, sender=ApiToken, dispatch_uid="accounts.token_saved")
@receiver(post_delete, sender=ApiToken, dispatch_uid="accounts.token_deleted")
def token_changed(sender, instance, **kwargs):
    hotcache.forget_on_commit(hotcache.token_key(instance.token_hash))


@receiver(post_save, sender="tenants.Organization", dispatch_uid="accounts.organization_saved")
@receiver(post_delete, sender="tenants.Organization", dispatch_uid="accounts.organization_gone")
def organization_changed(sender, instance, **kwargs):
    domains = instance.domains.values_list("domain", flat=True) if instance.pk else []
    hotcache.forget_on_commit(*[hotcache.host_key(domain) for domain in domains])


@receiver(post_save, sender="tenants.Domain", dispatch_uid="accounts.domain_saved")
@receiver(post_delete, sender="tenants.Domain", dispatch_uid="accounts.domain_gone")
def domain_changed(sender, instance, **kwargs):
    hotcache.forget_on_commit(hotcache.host_key(instance.domain))


@receiver(post_save, sender=TokenFamily, dispatch_uid="accounts.family_saved")
@receiver(post_delete, sender=TokenFamily, dispatch_uid="accounts.family_deleted")
def family_changed(sender, instance, **kwargs):
    hotcache.forget_on_commit(hotcache.family_key(instance.pk))
