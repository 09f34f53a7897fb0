from apps.accounts import services
from apps.accounts.models import Membership, User
from apps.notifications.models import Notification
from tests.base import run_queued_jobs


def test_it_notifies_owners_and_admins_when_an_invitation_is_accepted(
    owner, admin, viewer, acme, globex, django_capture_on_commit_callbacks
):
    inviter = Membership.objects.get(user=admin, organization=acme)
    _invitation, url = services.invite(inviter, email="sam@example.com", role="developer")
    sam = User.objects.create_user("sam@example.com", "pw-long-enough-1")
    with django_capture_on_commit_callbacks(execute=True):
        services.accept_invitation(url.rstrip("/").rsplit("/", 1)[1], acme, sam)
    assert "notify_invitation_accepted" in run_queued_jobs()

    from django.db import connection

    connection.set_tenant(acme)
    recipients = set(Notification.objects.values_list("recipient_id", flat=True))
    assert recipients == {owner.pk, admin.pk}
    assert "sam@example.com" in Notification.objects.first().text
    connection.set_tenant(globex)
    assert not Notification.objects.exists()


def test_it_skips_a_job_whose_organisation_is_gone(acme, in_acme):
    import dramatiq
    import pytest
    from dramatiq.middleware import SkipMessage

    from windflow.workers import TENANT_OPTION, TenantMiddleware

    message = dramatiq.Message(
        queue_name="default",
        actor_name="notify_invitation_accepted",
        args=(1,),
        kwargs={},
        options={TENANT_OPTION: "no_such_schema"},
    )
    with pytest.raises(SkipMessage):
        TenantMiddleware().before_process_message(dramatiq.get_broker(), message)
    from django.db import connection

    assert connection.schema_name == "public"


def test_it_records_the_tenant_in_enqueued_messages(in_acme):
    import dramatiq

    from apps.accounts.tasks import purge_expired_invitations
    from windflow.workers import TENANT_OPTION

    message = purge_expired_invitations.send()
    assert message.options[TENANT_OPTION] == "acme"
    assert dramatiq.get_broker().get_declared_queues()
