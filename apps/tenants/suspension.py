"""What a suspended organisation may still do, in one place.

- Its members read: every page, the API's GET/HEAD/OPTIONS, with a banner on each page that
  says since when, why and whom to contact.
- Nothing changes: every other method on its host is refused, whoever asks, by
  SuspensionMiddleware (a page: 403 with the reason; the API: 403
  {"error": {"code": "organization_suspended", ...}}). A person's own account is theirs,
  not the organisation's: signing in and out, their password, MFA and language
  (OWN_ACCOUNT_PREFIXES) still work.
- No job of it runs: windflow.workers.TenantMiddleware skips each one and sends it again a
  minute later, so that it runs once the organisation is reactivated (a deployment, a stack
  action, a "prepare server" stays queued meanwhile). The scheduler sends it none (server
  sweeps, requeues). The reaper of dead deployments goes on: it changes no server.
- Its websockets are refused (4403) and those open when it is suspended are closed.
- What runs on its servers keeps running: nothing is stopped there.

The check reads the Organization row the request already carries (`request.tenant`, from
the host cache of windflow.hotcache): no query and no Redis round trip. A status change
forgets that cache entry on every process (apps.tenants.services).
"""

from django.utils.translation import gettext as _

from .models import OrganizationStatus

CODE = "organization_suspended"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OWN_ACCOUNT_PREFIXES = ("/accounts/", "/oidc/", "/api/v1/auth/", "/admin/login/", "/admin/logout/")


def refuses(organization, method: str, path: str) -> bool:
    """Whether a request `method path` on `organization`'s host changes something that its
    suspension forbids. Attribute reads only."""
    return (
        organization is not None
        and organization.status == OrganizationStatus.SUSPENDED
        and method not in READ_METHODS
        and not path.startswith(OWN_ACCOUNT_PREFIXES)
    )


def message(organization) -> str:
    return _(
        "%(name)s is suspended (%(reason)s): its data can be read, nothing can be changed."
    ) % {"name": organization.name, "reason": organization.suspended_reason}
