import re

from django.core import mail

from apps.accounts.models import ApiToken, Invitation, Membership, User
from tests.base import PASSWORD, client_for, run_queued_jobs


def test_it_signs_up_with_an_email(db):
    client = client_for()
    response = client.post(
        "/accounts/signup/",
        {
            "email": "new@example.com",
            "password1": "a-Strong-pass-42",
            "password2": "a-Strong-pass-42",
        },
    )
    assert response.status_code == 302
    user = User.objects.get(email="new@example.com")
    assert client.session["_auth_user_id"] == str(user.pk)  # signed in by the sign-up
    home = client.get("/")
    # The signed-in home (an anonymous visitor gets the landing page), with no organisation
    # yet: sign-up makes none, it offers to create one.
    assert home.templates[0].name == "accounts/home.html"
    assert "You are not a member of any organisation yet." in home.content.decode()
    assert not Membership.objects.filter(user=user).exists()
    created = client.post("/organizations/new/", {"name": "Newco", "slug": "newco"})
    assert created.status_code == 302
    membership = Membership.objects.get(user=user)
    assert (membership.organization.slug, membership.role) == ("newco", "owner")
    assert "Newco" in client.get("/").content.decode()
    # The hand-off signs the newcomer in on the organisation's host: its dashboard.
    on_its_host = client_for(None, membership.organization)
    handoff = created["Location"].split(":8000", 1)[1]
    assert on_its_host.get(handoff)["Location"] == "/"
    dashboard = on_its_host.get("/")
    assert dashboard.status_code == 200
    assert dashboard.templates[0].name == "accounts/dashboard.html"
    assert "Welcome to Newco!" in dashboard.content.decode()


def test_it_refuses_a_duplicate_email_at_signup(owner):
    response = client_for().post(
        "/accounts/signup/",
        {
            "email": "OWNER@acme.test",
            "password1": "a-Strong-pass-42",
            "password2": "a-Strong-pass-42",
        },
    )
    assert response.status_code == 200
    assert "already registered" in response.content.decode()
    assert User.objects.filter(email__iexact="owner@acme.test").count() == 1


def test_it_locks_an_account_out_after_repeated_failures(owner):
    client = client_for(None, None)
    for _ in range(5):
        page = client.post("/accounts/login/", {"login": owner.email, "password": "wrong"})
        assert "not correct" in page.content.decode()
    locked = client.post("/accounts/login/", {"login": owner.email, "password": PASSWORD})
    assert "Too many failed login attempts" in locked.content.decode()
    assert "_auth_user_id" not in client.session


def test_it_signs_in_on_an_organisation_host(owner, acme):
    client = client_for(None, acme)
    response = client.post("/accounts/login/", {"login": owner.email, "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_it_invites_a_teammate_who_accepts(owner, acme, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(owner, acme).post(
            "/settings/invitations/", {"email": "sam@example.com", "role": "developer"}
        )
    assert response.status_code == 302
    run_queued_jobs()
    link = re.search(r"http://acme\.localhost:8000(/invitations/\S+/)", mail.outbox[0].body)[1]
    visitor = client_for(None, acme)
    page = visitor.get(link)
    assert "developer" in page.content.decode().lower()
    visitor.post(
        "/accounts/signup/",
        {
            "email": "sam@example.com",
            "password1": "a-Strong-pass-42",
            "password2": "a-Strong-pass-42",
        },
    )
    with django_capture_on_commit_callbacks(execute=True):
        accepted = visitor.post(link)
    assert accepted.status_code == 302
    assert (
        Membership.objects.get(user__email="sam@example.com", organization=acme).role == "developer"
    )
    again = visitor.post(link)
    assert again.status_code == 400
    assert "already been used" in again.content.decode()


def test_it_shows_a_clear_page_for_a_bad_invitation_link(acme):
    response = client_for(None, acme).get("/invitations/not-a-real-token/")
    assert response.status_code == 404
    assert "not valid" in response.content.decode()


def test_it_shows_invitation_form_errors_inline(owner, viewer, acme):
    response = client_for(owner, acme).post(
        "/settings/invitations/", {"email": viewer.email, "role": "viewer"}
    )
    assert response.status_code == 200
    assert "already a member" in response.content.decode()
    assert not Invitation.objects.exists()


def test_it_hides_invitations_from_operators(operator, acme):
    assert client_for(operator, acme).get("/settings/invitations/").status_code == 403


def test_it_explains_why_the_last_owner_cannot_be_demoted(owner, acme):
    membership = Membership.objects.get(user=owner, organization=acme)
    client = client_for(owner, acme)
    response = client.post(
        f"/settings/members/{membership.pk}/role/", {"role": "viewer"}, follow=True
    )
    assert "last owner" in response.content.decode()
    membership.refresh_from_db()
    assert membership.role == "owner"


def test_it_changes_a_role_from_the_members_page(owner, viewer, acme):
    membership = Membership.objects.get(user=viewer, organization=acme)
    client_for(owner, acme).post(f"/settings/members/{membership.pk}/role/", {"role": "developer"})
    membership.refresh_from_db()
    assert membership.role == "developer"


def test_it_shows_a_new_token_once(developer, acme):
    client = client_for(developer, acme)
    response = client.post(
        "/settings/tokens/", {"name": "laptop", "scope": "read", "expires_in_days": 30}
    )
    secret = re.search(r"wf_[A-Za-z0-9]{40}", response.content.decode())[0]
    assert ApiToken.objects.get(name="laptop").prefix == secret[:10]
    assert secret not in client.get("/settings/tokens/").content.decode()


def test_it_lets_a_member_revoke_their_token(developer, acme):
    client = client_for(developer, acme)
    client.post("/settings/tokens/", {"name": "laptop", "scope": "read"})
    token = ApiToken.objects.get(name="laptop")
    client.post(f"/settings/tokens/{token.pk}/revoke/")
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_it_gives_the_invitation_link_again_on_the_page_until_it_is_used(
    owner, acme, django_capture_on_commit_callbacks
):
    client = client_for(owner, acme)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/settings/invitations/", {"email": "kim@example.com", "role": "viewer"})
    run_queued_jobs()
    emailed = re.search(r"(http://acme\.localhost:8000/invitations/\S+/)", mail.outbox[0].body)[1]
    page = client.get("/settings/invitations/").content.decode()
    assert f'value="{emailed}"' in page
    assert 'data-copy="invitation-link-' in page
    # The invited address is filled in on the sign-up form the link leads to.
    path = emailed.removeprefix("http://acme.localhost:8000")
    accept = client_for(None, acme).get(path).content.decode()
    assert "/accounts/signup/?email=kim%40example.com&amp;next=" in accept
    signup = client_for(None, acme).get("/accounts/signup/?email=kim%40example.com")
    assert 'value="kim@example.com"' in signup.content.decode()
    # Revoked: no link any more.
    invitation = Invitation.objects.get(email="kim@example.com")
    client.post(f"/settings/invitations/{invitation.pk}/revoke/")
    assert emailed not in client.get("/settings/invitations/").content.decode()
