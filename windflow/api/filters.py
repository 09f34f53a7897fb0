"""The API's filter backend: django-filter's, skipped for a request that names no filter.

Building a FilterSet (its filters copied, a form bound and validated) costs about as much as
serialising a few rows, and with no filter in the query string it changes nothing: every
filter of ours leaves the queryset alone on an empty value. So a list request whose query
string holds nothing but the page parameters skips it."""

from django_filters.rest_framework import DjangoFilterBackend

from .pagination import Pagination

PAGE_PARAMETERS = frozenset({Pagination.page_query_param, Pagination.page_size_query_param})


class FilterBackend(DjangoFilterBackend):
    def filter_queryset(self, request, queryset, view):
        if PAGE_PARAMETERS.issuperset(request.query_params.keys()):
            return queryset
        return super().filter_queryset(request, queryset, view)
