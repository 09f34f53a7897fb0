from django.core.paginator import Paginator
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from windflow.views import OrganizationView, wants_partial

from . import services
from .forms import AuditFilterForm

EXPORTS = {
    "csv": ("text/csv; charset=utf-8", services.export_csv),
    "jsonl": ("application/x-ndjson; charset=utf-8", services.export_jsonl),
}


class AuditFilteredView(OrganizationView):
    action = "audit.view"

    def events(self):
        self.form = AuditFilterForm(self.request.GET or None)
        if self.form.is_bound and not self.form.is_valid():
            return None
        criteria = self.form.cleaned_data if self.form.is_bound else {}
        return services.filtered(**{k: v for k, v in criteria.items() if v})


class AuditListView(AuditFilteredView):
    def get(self, request):
        events = self.events()
        page = Paginator(events if events is not None else [], 50).get_page(request.GET.get("page"))
        context = {"form": self.form, "page": page, "query": request.GET.urlencode()}
        template = (
            "audit/htmx/event_table.html" if wants_partial(request) else "audit/event_list.html"
        )
        return render(request, template, context, status=200 if events is not None else 400)


class AuditExportView(AuditFilteredView):
    """Streamed, so that a year of events does not sit in memory."""

    def get(self, request, fmt):
        if fmt not in EXPORTS:
            raise Http404(
                _("No export as %(format)s: use %(formats)s.")
                % {"format": fmt, "formats": ", ".join(EXPORTS)}
            )
        events = self.events()
        if events is None:
            return render(
                request, "audit/event_list.html", {"form": self.form, "page": None}, status=400
            )
        content_type, writer = EXPORTS[fmt]
        response = StreamingHttpResponse(writer(events), content_type=content_type)
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = (
            f'attachment; filename="audit-{request.tenant.slug}-{stamp}.{fmt}"'
        )
        return response
