from django.contrib import messages
from django.shortcuts import render
from django.utils.translation import gettext as _

from apps.accounts import permissions
from apps.stacks import services as stacks
from apps.stacks.views import StackView
from windflow.errors import Forbidden, ServiceError
from windflow.views import OrganizationView, apply_service_error, redirect_after_post, wants_partial

from . import services
from .forms import GitSourceForm, GitStackForm, UploadForm


def add_errors(form, exc) -> None:
    """A refusal as form errors: each compose problem (with its file and line) on the form,
    a field's message on that field."""
    if isinstance(exc, stacks.ComposeInvalid):
        for _field, texts in exc.field_messages.items():
            for text in texts:
                form.add_error(None, text)
        return
    if exc.field in form.fields:
        form.add_error(exc.field, exc.message)
    else:
        apply_service_error(form, exc)


class SourceFormView(OrganizationView):
    """A form page of the "New stack" choices (Git repository, archive): on success, the
    stack's page; on a refusal, the form with the reason on its field."""

    template_name = ""
    kind = ""

    def make_form(self, data=None, files=None):
        raise NotImplementedError

    def save(self, form) -> str:
        raise NotImplementedError

    def check_body(self, request) -> None:
        """Refuse a request before its body is read."""

    def render_form(self, form, status=200):
        return render(
            self.request, self.template_name, {"form": form, "kind": self.kind}, status=status
        )

    def get(self, request):
        return self.render_form(self.make_form())

    def post(self, request):
        try:
            self.check_body(request)
        except ServiceError as exc:
            messages.error(request, exc.message)
            return self.render_form(self.make_form(), status=413)
        form = self.make_form(request.POST, request.FILES)
        if form.is_valid():
            try:
                url = self.save(form)
            except (Forbidden, ServiceError) as exc:
                add_errors(form, exc)
            else:
                return redirect_after_post(request, url)
        return self.render_form(form, status=422 if wants_partial(request) else 200)


class GitStackCreateView(SourceFormView):
    action = "stack.add"
    template_name = "sources/git_stack_form.html"
    kind = "git"

    def make_form(self, data=None, files=None):
        names = (
            stacks.available_secret_names()
            if permissions.can(self.membership, "secret.view")
            else []
        )
        return GitStackForm(data=data, secret_names=names)

    def save(self, form) -> str:
        stack = services.create_git_stack(self.membership, **form.service_fields())
        messages.success(
            self.request,
            _("Created %(name)s: its first revision comes once the repository is fetched.")
            % {"name": stack.name},
        )
        return stack.get_absolute_url()


class UploadView(SourceFormView):
    action = "stack.change"
    template_name = "sources/upload_form.html"
    kind = "archive"

    def check_body(self, request) -> None:
        services.refuse_oversized_body(request.META.get("CONTENT_LENGTH"))

    def make_form(self, data=None, files=None):
        return UploadForm(data=data, files=files, initial={"name": self.request.GET.get("stack")})

    def save(self, form) -> str:
        _stack, revision, _created = services.upload_cleaned(self.membership, form.cleaned_data)
        messages.success(
            self.request,
            _("Saved revision %(n)d of %(name)s from %(file)s.")
            % {
                "n": revision.number,
                "name": revision.stack.name,
                "file": form.cleaned_data["archive"].name,
            },
        )
        return revision.get_absolute_url()


class SourceEditView(StackView):
    """Change what a Git stack follows; saving fetches again."""

    action = "stack.change"
    template_name = "sources/source_form.html"

    def make_form(self, source, data=None):
        names = (
            stacks.available_secret_names(source.stack.environment)
            if permissions.can(self.membership, "secret.view")
            else []
        )
        initial = {
            "url": source.url,
            "ref": source.ref,
            "subfolder": source.subfolder,
            "compose_files": ", ".join(source.compose_files),
            "auth": source.auth,
            "token_secret": source.token_secret,
            "poll_interval": source.poll_interval,
        }
        return GitSourceForm(data=data, initial=initial, secret_names=names)

    def render_form(self, source, form, status=200):
        context = {"form": form, "object": source.stack, "source": source}
        return render(self.request, self.template_name, context, status=status)

    def get(self, request, name):
        source = services.get_source_for(self.membership, name, "stack.change")
        return self.render_form(source, self.make_form(source))

    def post(self, request, name):
        source = services.get_source_for(self.membership, name, "stack.change")
        form = self.make_form(source, request.POST)
        if form.is_valid():
            try:
                services.update_source(self.membership, source, **form.service_fields())
            except (Forbidden, ServiceError) as exc:
                add_errors(form, exc)
            else:
                messages.success(request, _("Saved the source of %(name)s.") % {"name": name})
                return redirect_after_post(request, source.stack.get_absolute_url())
        source.refresh_from_db()
        return self.render_form(source, form, status=422 if wants_partial(request) else 200)


class SourceSyncView(StackView):
    """Fetch now: the worker fetches the repository; the source panel shows how it went."""

    action = "stack.change"

    def post(self, request, name):
        stack = self.get_object()
        try:
            source = services.get_source_for(self.membership, name, "stack.change")
            services.request_sync(self.membership, source)
        except ServiceError as exc:
            messages.error(request, exc.message)
        else:
            messages.info(request, _("Fetching %(ref)s…") % {"ref": source.ref})
        return redirect_after_post(request, stack.get_absolute_url())
