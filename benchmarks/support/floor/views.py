from django.http import HttpResponse
from rest_framework import generics, pagination, serializers

from .models import Environment


class EnvironmentSerializer(serializers.ModelSerializer):
    """The same fields as WindFlow's, the detail URL built once per page in the same way."""

    url = serializers.SerializerMethodField()

    class Meta:
        model = Environment
        fields = [
            "id",
            "url",
            "name",
            "slug",
            "kind",
            "protected",
            "description",
            "variables",
            "created_at",
            "updated_at",
        ]

    def get_url(self, environment) -> str:
        if not hasattr(self, "_detail_prefix"):
            request = self.context["request"]
            self._detail_prefix = request.build_absolute_uri("/api/v1/environments/")
        return f"{self._detail_prefix}{environment.slug}/"


class Pagination(pagination.PageNumberPagination):
    page_size = 25


class EnvironmentList(generics.ListAPIView):
    queryset = Environment.objects.all()
    serializer_class = EnvironmentSerializer
    pagination_class = Pagination


def healthz(request):
    return HttpResponse("ok")
