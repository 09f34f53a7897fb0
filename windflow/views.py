"""Base views every domain app builds on, and the health endpoint.

- `OrganizationView`: a page of the organisation; checks membership and the action the
  request needs (`action`, `method_actions`) before anything else.
- `ObjectListView`: a page of objects, `get_queryset()` through `permissions.visible()`.
- `ObjectView`: a page about one object, `get_object()` through the model's access helper.
- `ObjectFormView`, `ObjectDeleteView`: an object's form (or a new object's) and deletion.
"""

from django import forms
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import connection
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.http import require_safe
from django_htmx.http import HttpResponseClientRedirect

from apps.accounts import permissions
from apps.accounts.middleware import membership_of
from windflow.errors import Forbidden, NotFound, ServiceError


def wants_partial(request) -> bool:
    """One URL serves the page and its partial: HTMX requests (not boosted) get the partial."""
    return bool(getattr(request, "htmx", False)) and not request.htmx.boosted


def redirect_after_post(request, url: str):
    return (
        HttpResponseClientRedirect(url)
        if getattr(request, "htmx", False)
        else (HttpResponseRedirect(url))
    )


def apply_service_error(form, error: ServiceError | Forbidden) -> None:
    field = error.field if error.field in form.fields else None
    form.add_error(field, error.message)


def apply_validation_error(form, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error.messages)


class OrganizationView(View):
    """A page of the organisation: the user must be signed in and a member; `action` (a
    permissions action such as "environment.view") is checked before anything else."""

    action: str | None = None
    # Methods that need another action than `action`, e.g. {"post": "member.change"}.
    method_actions: dict[str, str] = {}

    def required_action(self, request) -> str | None:
        """The action this request needs (None: membership is enough). The role matrix test
        (tests/security/test_role_matrix.py) reads the same answer."""
        return self.method_actions.get(request.method.lower(), self.action)

    def dispatch(self, request, *args, **kwargs):
        tenant = getattr(request, "tenant", None)
        if tenant is None or tenant.is_public:
            return render(request, "404.html", status=404)
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        self.membership = membership_of(request)
        if self.membership is None:
            return render(request, "accounts/not_a_member.html", status=403)
        action = self.required_action(request)
        if action not in (None, permissions.NO_ROLE):
            try:
                permissions.require(self.membership, action)
            except Forbidden as exc:  # the 403 page names the role and what it does not allow
                raise PermissionDenied(exc.message) from exc
        try:
            return super().dispatch(request, *args, **kwargs)
        except Forbidden as exc:  # a service's own refusal: the 403 page, with its reason
            raise PermissionDenied(exc.message) from exc
        except NotFound as exc:  # an access helper's: no such object for this member
            raise Http404(exc.message) from exc


class ObjectView(OrganizationView):
    """A page about one object of the organisation: its detail, its form, its deletion, an
    action on it. `get_object()` asks the model's access helper (`get_object_for`, e.g.
    `staticmethod(services.get_stack_for)`) for the object that the URL argument
    `lookup_url_kwarg` names, with the action this request needs:

    - a missing object, or another organisation's: 404;
    - a role below the action: the 403 page, naming the role (permissions.require).

    `queryset`, when set, is how this page wants the objects loaded (select_related...); the
    helper narrows it to what the member may see. Pages, API viewsets and consumers all find
    objects through the same helper."""

    queryset = None
    lookup_url_kwarg = "pk"

    @staticmethod
    def get_object_for(membership, key, *, action=None, queryset=None):
        raise NotImplementedError("name the model's access helper in `get_object_for`")

    def get_queryset(self):
        return None if self.queryset is None else self.queryset.all()

    def get_object(self):
        options = {}
        action = self.required_action(self.request)
        if action not in (None, permissions.NO_ROLE):  # else the helper's own: see the object
            options["action"] = action
        queryset = self.get_queryset()
        if queryset is not None:
            options["queryset"] = queryset
        return self.get_object_for(self.membership, self.kwargs[self.lookup_url_kwarg], **options)


class ObjectListView(OrganizationView):
    """A searchable, paginated table; HTMX requests get only the table partial."""

    queryset = None
    filterset_class = None
    template_name = ""
    partial_template_name = ""
    paginate_by = 25

    def get_queryset(self):
        queryset = permissions.visible(self.membership, self.queryset.all(), self.action)
        if self.filterset_class:
            self.filterset = self.filterset_class(self.request.GET, queryset=queryset)
            queryset = self.filterset.qs
        return queryset

    def get(self, request, *args, **kwargs):
        page = Paginator(self.get_queryset(), self.paginate_by).get_page(request.GET.get("page"))
        partial = wants_partial(request)
        context = {
            "page": page,
            "filterset": getattr(self, "filterset", None),
            **self.get_context_data(partial=partial),
        }
        return render(
            request, self.partial_template_name if partial else self.template_name, context
        )

    def get_context_data(self, *, partial: bool) -> dict:
        """What the templates need besides the page of objects (`partial`: the table only)."""
        return {}


class ObjectFormView(ObjectView):
    """Shows a form, for the object the URL names (`get_object()`) or for a new one when it
    names none; on a valid POST calls `save(form)` (a service call). Service errors become
    form errors; success answers with a (client) redirect."""

    form_class = None
    template_name = ""
    # Fields whose typed value must never travel back to the browser (keys, secret values).
    secret_fields: tuple[str, ...] = ()

    def get_object(self):
        if self.lookup_url_kwarg not in self.kwargs:
            return None  # a new object
        return super().get_object()

    def get_form(self, data=None):
        if issubclass(self.form_class, forms.ModelForm):
            return self.form_class(data=data, instance=self.object)
        return self.form_class(data=data)

    def get(self, request, *args, **kwargs):
        self.object = self.get_object()
        return self.render_form(self.get_form())

    def post(self, request, *args, **kwargs):
        self.object = self.get_object()
        form = self.get_form(request.POST)
        if form.is_valid():
            try:
                saved = self.save(form)
            except (Forbidden, ServiceError) as exc:
                apply_service_error(form, exc)
            except ValidationError as exc:
                apply_validation_error(form, exc)
            else:
                messages.success(request, self.success_message(saved, created=self.object is None))
                return redirect_after_post(request, self.success_url(saved))
        return self.render_form(form, status=422 if wants_partial(request) else 200)

    def render_form(self, form, status=200):
        if form.is_bound and self.secret_fields:
            form.data = form.data.copy()
            for name in self.secret_fields:
                form.data[name] = ""
        context = {"form": form, "object": self.object}
        return render(
            request=self.request, template_name=self.template_name, context=context, status=status
        )

    def save(self, form):
        raise NotImplementedError

    def success_message(self, obj, created: bool) -> str:
        if created:
            return _("Created %(obj)s.") % {"obj": obj}
        return _("Saved %(obj)s.") % {"obj": obj}

    def success_url(self, obj) -> str:
        return obj.get_absolute_url()


class ObjectDeleteView(ObjectView):
    """A confirmation page; POST calls `delete(obj)` (a service call)."""

    template_name = "generic/object_delete.html"
    # `delete(obj)` is the service hook, not an HTTP DELETE handler.
    http_method_names = ["get", "post", "head", "options"]

    def get(self, request, *args, **kwargs):
        obj = self.get_object()
        return render(
            request, self.template_name, {"object": obj, "cancel_url": obj.get_absolute_url()}
        )

    def post(self, request, *args, **kwargs):
        obj = self.get_object()
        try:
            self.delete(obj)
        except (Forbidden, ServiceError) as exc:
            messages.error(request, exc.message)
            return redirect_after_post(request, obj.get_absolute_url())
        messages.success(request, _("Deleted %(obj)s.") % {"obj": obj})
        return redirect_after_post(request, self.success_url())

    def delete(self, obj):
        raise NotImplementedError

    def success_url(self) -> str:
        raise NotImplementedError


@require_safe
def healthz(request):
    """Database, Redis and worker heartbeat. 200 when all are fine, otherwise 503 naming what
    failed (`failed`: database, redis, worker). Never 500: it is served before the
    organisation lookup and the session (windflow.middleware), and reports every error."""
    checks = {"database": _check_database(), **_check_redis()}
    failed = [name for name, value in checks.items() if value != "ok"]
    return JsonResponse(
        {"status": "degraded" if failed else "ok", "failed": failed, "checks": checks},
        status=503 if failed else 200,
    )


HEALTHZ_DATABASE_TIMEOUT = 2.0


def _check_database() -> str:
    """One query on a pooled connection, waiting at most a couple of seconds for one."""
    try:
        pool = getattr(connection, "pool", None)
        if pool is not None and not connection.in_atomic_block:
            pool.open()  # Django opens it on first use: a fresh process may not have yet
            with pool.connection(timeout=HEALTHZ_DATABASE_TIMEOUT) as raw:
                raw.execute("SELECT 1")
        else:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
    except Exception as exc:  # report, never raise: this page is for load balancers
        return f"error: {exc.__class__.__name__}"
    return "ok"


def _check_redis() -> dict:
    from django_redis import get_redis_connection

    from windflow.workers import last_heartbeat

    try:
        get_redis_connection("default").ping()
    except Exception as exc:
        return {"redis": f"error: {exc.__class__.__name__}", "worker": "unknown"}
    try:
        worker = "ok" if last_heartbeat() else "no heartbeat"
    except Exception as exc:
        worker = f"error: {exc.__class__.__name__}"
    return {"redis": "ok", "worker": worker}


def platform_health(request):
    """The operators' health page (admin, public host, staff only: wrapped by the admin
    site's admin_view in windflow.urls_public). Each part says when its dependency is away."""
    from django.contrib import admin
    from django.template.response import TemplateResponse

    from windflow import health

    context = {
        **admin.site.each_context(request),
        "title": _("Platform health"),
        "health": health.platform_health(),
        "window_hours": int(health.JOB_WINDOW.total_seconds() // 3600),
    }
    return TemplateResponse(request, "admin/platform_health.html", context)


platform_health = require_safe(platform_health)
