"""What the API's hot path keeps from one request to the next (benchmarks/
bench_api_environments.py): serializer fields built once per class, django-filter skipped
when no filter is asked for, one Redis client per process; and that each still answers as
before."""

import threading

from django.conf import settings
from django.test import override_settings
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from apps.environments.api.serializers import EnvironmentSerializer
from apps.environments.api.views import EnvironmentViewSet
from apps.environments.models import Environment
from tests.base import api_client
from windflow import hotcache
from windflow.api.filters import FilterBackend


def test_it_builds_a_serializers_fields_once_and_gives_each_use_its_own(acme, owner):
    request = APIRequestFactory().get("/api/v1/environments/", HTTP_HOST="acme.localhost")
    first = EnvironmentSerializer(context={"request": request}).fields
    assert "_fields_built_once" in EnvironmentSerializer.__dict__
    second = EnvironmentSerializer(context={"request": request}).fields
    assert list(first) == list(second) == EnvironmentSerializer.Meta.fields
    for name in first:
        assert first[name] is not second[name]
        assert first[name].parent is not second[name].parent
    assert first["slug"].read_only and first["variables"].child.trim_whitespace is False


def test_it_lists_with_filters_and_pages_as_before(acme, owner, in_acme):
    client = api_client(owner, acme)
    for index in range(30):
        client.post(
            "/api/v1/environments/",
            {"name": f"env-{index:02d}", "kind": "prod" if index % 3 == 0 else "dev"},
            format="json",
        )
    page_two = client.get("/api/v1/environments/?page=2&page_size=20").json()
    assert page_two["count"] == 30 and len(page_two["results"]) == 10
    prod = client.get("/api/v1/environments/?kind=prod&page=1").json()
    assert prod["count"] == 10 and {row["kind"] for row in prod["results"]} == {"prod"}
    searched = client.get("/api/v1/environments/?q=env-0").json()
    assert searched["count"] == 10


def test_it_skips_django_filter_when_the_query_names_only_pages(acme, in_acme):
    queryset = Environment.objects.all()
    factory = APIRequestFactory()
    view = EnvironmentViewSet()
    paging = Request(factory.get("/api/v1/environments/", {"page": "2", "page_size": "10"}))
    assert FilterBackend().filter_queryset(paging, queryset, view) is queryset
    filtering = Request(factory.get("/api/v1/environments/", {"kind": "prod"}))
    filtered = FilterBackend().filter_queryset(filtering, queryset, view)
    assert filtered is not queryset and "prod" in str(filtered.query)


def test_it_keeps_one_redis_client_per_process_that_follows_the_settings(db):
    seen = []
    thread = threading.Thread(target=lambda: seen.append(hotcache.redis_client()))
    thread.start()
    thread.join()
    assert seen[0] is hotcache.redis_client()
    elsewhere = {
        alias: dict(config, LOCATION="redis://127.0.0.1:1/0")
        for alias, config in settings.CACHES.items()
    }
    with override_settings(CACHES=elsewhere):
        moved = hotcache.redis_client("default")
        assert moved.connection_pool.connection_kwargs["port"] == 1
    assert hotcache.redis_client("default").connection_pool.connection_kwargs["port"] != 1
