"""Base classes for the organisation's API: thin viewsets that call services."""

from rest_framework import mixins, viewsets

from apps.accounts import permissions
from apps.accounts.middleware import membership_of


class OrganizationViewSet(viewsets.GenericViewSet):
    """`resource` names the permission family (`environment` -> environment.view, .add...);
    verbs are those of apps.accounts.permissions (view, add, change, delete, deploy...).
    Querysets always pass through permissions.visible()."""

    resource: str = ""
    view_verb = "view"  # what a member needs to see the objects at all
    action_verbs = {
        "list": "view",
        "retrieve": "view",
        "create": "add",
        "update": "change",
        "partial_update": "change",
        "destroy": "delete",
    }

    @property
    def membership(self):
        return membership_of(self.request)

    def required_action(self, request) -> str | None:
        """The action this request needs: `action_verbs[action]` is a verb of `resource`
        ("change" -> "stack.change"), a whole action ("stack.deploy"), or a dict of
        either by HTTP method. The role matrix test reads the same answer."""
        if not self.action:  # OPTIONS and the like: membership is enough
            return None
        verb = self.action_verbs.get(self.action) or getattr(
            getattr(self, self.action, None), "required_verb", None
        )
        if isinstance(verb, dict):
            verb = verb.get(request.method.lower())
        if not verb:
            return None
        return verb if "." in verb else f"{self.resource}.{verb}"

    def get_queryset(self):
        return permissions.visible(
            self.membership, super().get_queryset(), f"{self.resource}.{self.view_verb}"
        )


class OrganizationModelViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    OrganizationViewSet,
):
    """Create, update and delete go through the model's service functions, named by
    `perform_create`, `perform_update` and `perform_destroy` in each viewset."""
