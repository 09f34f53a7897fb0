"""Base classes for the organisation's API: thin viewsets that call services.

Every viewset of apps/*/api/views.py is one of:

- `OrganizationReadOnlyViewSet`: list and retrieve (audit events, deployments);
- `OrganizationModelViewSet`: list, retrieve, create, update and delete; a viewset that
  offers fewer writes says so with `http_method_names`, and a write that needs more than the
  serializer (a service call) overrides `create` / `perform_*`.

Both find objects through the model's access helper (`get_object_for`), as pages and
consumers do."""

from rest_framework import mixins, viewsets

from apps.accounts import permissions
from apps.accounts.middleware import membership_of


class OrganizationViewSet(viewsets.GenericViewSet):
    """`resource` names the permission family (`environment` -> environment.view, .add...);
    verbs are those of apps.accounts.permissions (view, add, change, delete, deploy...).
    Querysets always pass through permissions.visible(); one object through the model's
    access helper, `get_object_for` (e.g. `staticmethod(services.get_stack_for)`), asked
    with the action the request needs: 404 when the member cannot see it, 403 when the role
    does not allow the action."""

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

    @staticmethod
    def get_object_for(membership, key, *, action=None, queryset=None):
        raise NotImplementedError("name the model's access helper in `get_object_for`")

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

    def get_object(self):
        options = {"queryset": self.get_queryset()}
        action = self.required_action(self.request)
        if action not in (None, permissions.NO_ROLE):
            options["action"] = action
        key = self.kwargs[self.lookup_url_kwarg or self.lookup_field]
        obj = self.get_object_for(self.membership, key, **options)
        self.check_object_permissions(self.request, obj)
        return obj


class OrganizationReadOnlyViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationViewSet
):
    """List and retrieve."""


class OrganizationModelViewSet(
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    OrganizationReadOnlyViewSet,
):
    """Create, update and delete go through the model's service functions, named by
    `perform_create`, `perform_update` and `perform_destroy` in each viewset."""
