"""Pages of the public site (home, new organisation) and of an organisation's settings
(members, invitations, tokens), plus invitation acceptance and the sign-in handoff."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.tenants import services as tenant_services
from apps.tenants.models import Organization
from windflow.errors import Forbidden, ServiceError
from windflow.views import ObjectView, OrganizationView, apply_service_error, redirect_after_post

from . import permissions, services
from .forms import ApiTokenForm, InvitationForm, LanguageForm, OrganizationForm, RoleForm

SESSION_BACKEND = "allauth.account.auth_backends.AuthenticationBackend"


# --- Public site ------------------------------------------------------------------------------


@require_safe
def home(request):
    """Public host: a landing page, or the signed-in user's organisations."""
    if not request.user.is_authenticated:
        return render(request, "accounts/landing.html")
    memberships = request.user.memberships.select_related("organization").order_by(
        "organization__name"
    )
    return render(request, "accounts/home.html", {"memberships": memberships})


class OrganizationCreateView(View):
    # The public host: any signed-in person creates an organisation.
    action = permissions.NO_ROLE
    template_name = "accounts/organization_create.html"

    def get(self, request):
        if not request.user.is_authenticated:
            return redirect(f"{reverse('account_login')}?next={request.path}")
        return render(request, self.template_name, {"form": OrganizationForm()})

    def post(self, request):
        if not request.user.is_authenticated:
            return redirect(f"{reverse('account_login')}?next={request.path}")
        form = OrganizationForm(request.POST)
        if form.is_valid():
            try:
                organization = tenant_services.create_organization(
                    name=form.cleaned_data["name"],
                    slug=form.cleaned_data["slug"],
                    owner=request.user,
                )
            except tenant_services.SlugTaken:
                form.add_error("slug", _("This address is already taken."))
            except ValidationError as exc:
                form.add_error("slug", exc.messages)
            else:
                # The welcome is shown on the organisation's host, after the handoff.
                return HttpResponseRedirect(
                    services.handoff_url(request.user, organization, welcome=True)
                )
        return render(request, self.template_name, {"form": form})


@require_safe
@login_required
def go_to_organization(request, slug):
    """The organisation switcher: sign in on the organisation's host and land there."""
    organization = get_object_or_404(Organization, slug=slug)
    if permissions.get_membership(request.user, organization) is None:
        messages.error(request, _("You are not a member of %(org)s.") % {"org": organization})
        return redirect("/")
    return HttpResponseRedirect(services.handoff_url(request.user, organization))


@csrf_exempt  # the signed, single-use token is the proof; it comes from another host
@require_http_methods(["GET", "HEAD", "POST"])
def handoff(request):
    """Consume a single-use sign-in link on the organisation's host: a member's (GET), or
    platform staff's support access (POSTed from the platform admin)."""
    posted = request.method == "POST"
    token = (request.POST if posted else request.GET).get("token", "")
    try:
        handed = services.consume_handoff(token, request.tenant, posted=posted)
    except (Forbidden, ServiceError) as exc:
        return render(request, "accounts/handoff_failed.html", {"error": exc.message}, status=400)
    login(request, handed.user, backend=SESSION_BACKEND)
    if handed.support is not None:  # after login(), which starts a new session
        opened = {"id": handed.support.pk, "org": request.tenant.schema_name}
        request.session[services.SUPPORT_SESSION_KEY] = opened
    if handed.welcome:
        messages.success(request, _("Welcome to %(org)s!") % {"org": request.tenant.name})
    return redirect(handed.next_path)


handoff.action = permissions.NO_ROLE  # signs in: the token names who, and where


@require_POST
def set_language(request):
    """The language switch of the user menu, on every host: remembered on the person when
    signed in (User.language), and in the language cookie for the pages before a sign-in."""
    form = LanguageForm(request.POST)
    if not form.is_valid():
        return render(request, "400.html", status=400)
    language = form.cleaned_data["language"]
    if request.user.is_authenticated:
        services.set_language(request.user, language)
    next_url = form.cleaned_data["next"]
    if next_url == request.path or not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = "/"
    response = redirect(next_url)
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )
    return response


set_language.action = permissions.NO_ROLE  # the person's own preference, in any organisation


# --- Organisation: dashboard and settings -----------------------------------------------------


class DashboardView(OrganizationView):
    action = "organization.view"

    def get(self, request):
        from apps.deployments.services import visible_deployments
        from apps.environments.models import Environment
        from apps.notifications.services import for_user
        from apps.stacks.models import Stack
        from apps.targets.models import Target

        context = {
            "environments": Environment.objects.all()[:10],
            "environment_count": Environment.objects.count(),
            "stack_count": Stack.objects.count(),
            "target_count": Target.objects.count(),
            "member_count": request.tenant.memberships.count(),
            "deployments": visible_deployments(self.membership)[:8],
            "notifications": for_user(request.user)[:5],
        }
        return render(request, "accounts/dashboard.html", context)


class MemberListView(OrganizationView):
    action = "member.view"

    def get(self, request):
        members = services.visible_members(self.membership).order_by("user__email")
        rows = [
            (member, permissions.can_change_member(self.membership, member)) for member in members
        ]
        return render(
            request,
            "accounts/member_list.html",
            {"rows": rows, "roles": permissions.assignable_roles(self.membership)},
        )


class MemberView(ObjectView):
    """A page about the membership that the URL's `pk` names (services.get_member_for)."""

    get_object_for = staticmethod(services.get_member_for)


class MemberRoleView(MemberView):
    action = "member.view"
    method_actions = {"post": "member.change"}  # finer checks (rank, last owner): the service

    def post(self, request, pk):
        member = self.get_object()
        form = RoleForm(request.POST)
        try:
            if not form.is_valid():
                raise ServiceError(_("Choose a valid role."))
            services.change_role(self.membership, member, form.cleaned_data["role"])
            messages.success(request, _("Role updated for %(email)s.") % {"email": member.user})
        except (Forbidden, ServiceError) as exc:
            messages.error(request, exc.message)
        return redirect_after_post(request, reverse("accounts:member_list"))


class MemberRemoveView(MemberView):
    action = "member.view"  # every member may leave; removing others: the service decides

    def post(self, request, pk):
        member = self.get_object()
        leaving = member.pk == self.membership.pk
        try:
            services.remove_member(self.membership, member)
        except (Forbidden, ServiceError) as exc:
            messages.error(request, exc.message)
            return redirect_after_post(request, reverse("accounts:member_list"))
        if leaving:
            messages.success(request, _("You left %(org)s.") % {"org": request.tenant})
            return redirect_after_post(request, tenant_services.public_url("/"))
        messages.success(request, _("%(email)s was removed.") % {"email": member.user})
        return redirect_after_post(request, reverse("accounts:member_list"))


class InvitationListView(OrganizationView):
    action = "invitation.view"
    method_actions = {"post": "invitation.add"}

    def form(self, data=None):
        return InvitationForm(data, roles=permissions.assignable_roles(self.membership))

    def render_page(self, form, status=200):
        invitations = list(services.visible_invitations(self.membership)[:100])
        for invitation in invitations:
            invitation.link = services.invitation_url(self.membership, invitation)
        return render(
            self.request,
            "accounts/invitation_list.html",
            {"form": form, "invitations": invitations},
            status=status,
        )

    def get(self, request):
        return self.render_page(self.form())

    def post(self, request):
        form = self.form(request.POST)
        if form.is_valid():
            try:
                invitation, _url = services.invite(self.membership, **form.cleaned_data)
            except (Forbidden, ServiceError) as exc:
                apply_service_error(form, exc)
            else:
                messages.success(
                    request, _("Invitation sent to %(email)s.") % {"email": invitation.email}
                )
                return redirect_after_post(request, reverse("accounts:invitation_list"))
        return self.render_page(form)


class InvitationRevokeView(ObjectView):
    action = "invitation.delete"
    get_object_for = staticmethod(services.get_invitation_for)

    def post(self, request, pk):
        invitation = self.get_object()
        try:
            services.revoke_invitation(self.membership, invitation)
            messages.success(request, _("Invitation revoked."))
        except (Forbidden, ServiceError) as exc:
            messages.error(request, exc.message)
        return redirect_after_post(request, reverse("accounts:invitation_list"))


class InvitationAcceptView(View):
    """Anyone holding the link sees the invitation; accepting needs the invited account."""

    action = permissions.NO_ROLE  # the invitee is not a member yet
    template_name = "accounts/invitation_accept.html"

    def get(self, request, token):
        try:
            invitation = services.find_invitation(token, request.tenant)
        except (Forbidden, ServiceError) as exc:
            return render(request, self.template_name, {"error": exc.message}, status=404)
        return render(request, self.template_name, {"invitation": invitation, "token": token})

    def post(self, request, token):
        if not request.user.is_authenticated:
            return redirect(f"{reverse('account_login')}?next={request.path}")
        try:
            services.accept_invitation(token, request.tenant, request.user)
        except (Forbidden, ServiceError) as exc:
            return render(
                request, self.template_name, {"error": exc.message}, status=exc.status_code
            )
        messages.success(request, _("Welcome to %(org)s!") % {"org": request.tenant})
        return redirect("dashboard")


class TokenListView(OrganizationView):
    action = "token.use"

    def render_page(self, form, new_token=None, status=200):
        tokens = services.listed_tokens(self.membership)
        context = {"form": form, "tokens": tokens, "new_token": new_token}
        return render(self.request, "accounts/token_list.html", context, status=status)

    def get(self, request):
        return self.render_page(ApiTokenForm())

    def post(self, request):
        form = ApiTokenForm(request.POST)
        if form.is_valid():
            try:
                token, secret = services.create_api_token(self.membership, **form.cleaned_data)
            except (Forbidden, ServiceError) as exc:
                apply_service_error(form, exc)
            else:
                # Shown once, on this response only; never stored in clear.
                return self.render_page(ApiTokenForm(), new_token=(token, secret))
        return self.render_page(form)


class TokenRevokeView(ObjectView):
    action = "token.use"  # your own tokens; everyone's for admins: the service decides
    get_object_for = staticmethod(services.get_token_for)

    def post(self, request, pk):
        token = self.get_object()
        try:
            services.revoke_api_token(self.membership, token)
            messages.success(request, _("Token “%(name)s” revoked.") % {"name": token.name})
        except (Forbidden, ServiceError) as exc:
            messages.error(request, exc.message)
        return redirect_after_post(request, reverse("accounts:token_list"))
