import django_filters

from apps.environments.models import Environment
from apps.targets.models import Target

from .models import Stack


class StackFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", label="Search")
    environment = django_filters.ModelChoiceFilter(
        field_name="environment", to_field_name="slug", queryset=Environment.objects.all()
    )
    target = django_filters.ModelChoiceFilter(
        field_name="target", to_field_name="slug", queryset=Target.objects.all()
    )

    class Meta:
        model = Stack
        fields = ["q", "environment", "target"]
