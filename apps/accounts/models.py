import hashlib
import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _

from .choices import Role, TokenScope


def hash_secret(secret: str) -> str:
    """Tokens and invitation links are long random strings: one SHA-256 is enough to store
    them safely, and keeps authentication cheap on every API call."""
    return hashlib.sha256(secret.encode()).hexdigest()


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email, password, **extra):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email, password=None, **extra):
        extra.update(is_staff=True, is_superuser=True)
        return self._create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. Global to the platform; Membership gives a role in an organisation."""

    email = models.EmailField(_("email address"), unique=True)
    full_name = models.CharField(_("full name"), max_length=150, blank=True)
    is_staff = models.BooleanField(
        _("platform operator"), default=False, help_text=_("Can use the operators' admin.")
    )
    is_active = models.BooleanField(_("active"), default=True)
    date_joined = models.DateTimeField(default=timezone.now)
    # In every JWT and in the session hash: raising it ends every sign-in at once (a new
    # password, a deactivation). Personal access tokens are credentials of their own.
    token_version = models.PositiveIntegerField(_("sign-in generation"), default=0, editable=False)
    # The pages' language for this person, wherever they sign in (empty: the browser's).
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, blank=True, default=""
    )

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = []

    class Meta:
        ordering = ["email"]
        verbose_name = _("user")

    def __str__(self):
        return self.email

    def get_full_name(self):
        return self.full_name or self.email

    def get_short_name(self):
        return self.full_name.split(" ")[0] if self.full_name else self.email

    def set_unusable_password(self):
        super().set_unusable_password()
        self._password_removed = True

    def save(self, *args, **kwargs):
        """A new password (not the hash upgrade check_password() makes) or a save of an
        inactive account ends every JWT and session of this person (token_version)."""
        adding = self._state.adding
        new_password = self._password is not None or getattr(self, "_password_removed", False)
        end_sign_ins = not adding and (new_password or not self.is_active)
        update_fields = kwargs.get("update_fields")
        if end_sign_ins and update_fields is not None:
            kwargs["update_fields"] = {*update_fields, "token_version"}
        if end_sign_ins:
            self.token_version = models.F("token_version") + 1
        super().save(*args, **kwargs)
        if end_sign_ins:
            self._password_removed = False
            self.refresh_from_db(fields=["token_version"])

    def _get_session_auth_hash(self, secret=None):
        """Django's session hash (of the password hash), with the sign-in generation: raising
        token_version signs every session out, as a new password does."""
        value = self.password if not self.token_version else f"{self.password}:{self.token_version}"
        return salted_hmac(
            "django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash",
            value,
            secret=secret,
            algorithm="sha256",
        ).hexdigest()


class Membership(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(
        "tenants.Organization", on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organization__name", "user__email"]
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="unique_membership")
        ]

    def __str__(self):
        return f"{self.user} in {self.organization} ({self.role})"

    @property
    def rank(self) -> int:
        return Role(self.role).rank


class TokenFamily(models.Model):
    """One sign-in through the JWT endpoint: the chain of refresh tokens that rotation makes
    from it, and the access tokens each one gave. Only the newest refresh token is accepted;
    an older one presented again (someone holds a copy) revokes the whole family.

    Bound to the membership: removing the member removes their families, so a member who
    rejoins starts with none."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    membership = models.ForeignKey(
        Membership, on_delete=models.CASCADE, related_name="token_families"
    )
    current_jti = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("JWT sign-in")

    def __str__(self):
        return f"JWT sign-in {self.pk} ({self.membership_id})"


class InvitationQuerySet(models.QuerySet):
    def pending(self):
        return self.filter(
            accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
        )


class Invitation(models.Model):
    """A single-use, expiring link that makes its holder a member with the given role."""

    organization = models.ForeignKey(
        "tenants.Organization", on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.email} to {self.organization} as {self.role}"

    @property
    def status(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"


class ApiTokenQuerySet(models.QuerySet):
    def active(self):
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class ApiToken(models.Model):
    """A personal access token, bound to one user in one organisation.

    The secret is shown once; only its SHA-256 is stored. `prefix` (the first characters)
    lets people recognise a token in lists and logs without revealing it."""

    PREFIX = "wf_"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    organization = models.ForeignKey(
        "tenants.Organization", on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16)
    token_hash = models.CharField(max_length=64, unique=True)
    scope = models.CharField(max_length=8, choices=TokenScope.choices, default=TokenScope.READ)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        if self.revoked_at:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()

    @property
    def can_write(self) -> bool:
        return self.scope == TokenScope.WRITE


class SupportAccessQuerySet(models.QuerySet):
    def active(self, now=None):
        """Grants in force now: started, not expired, not ended early."""
        now = now or timezone.now()
        return self.filter(ended_at__isnull=True, started_at__lte=now, expires_at__gt=now)


class SupportAccess(models.Model):
    """Platform staff's time-limited access to one organisation (its pages and its admin),
    with a reason, read-only unless read-write was chosen (and allowed). The only way staff,
    superusers included, reach an organisation's host; recorded in both audit trails."""

    staff = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="support_accesses", verbose_name=_("staff")
    )
    organization = models.ForeignKey(
        "tenants.Organization",
        on_delete=models.CASCADE,
        related_name="support_accesses",
        verbose_name=_("organisation"),
    )
    reason = models.TextField(_("reason"), max_length=500)
    read_write = models.BooleanField(_("read-write"), default=False)
    started_at = models.DateTimeField(_("start"), default=timezone.now)
    expires_at = models.DateTimeField(_("expiry"))
    ended_at = models.DateTimeField(_("ended early"), null=True, blank=True)
    # Whether the end (early or at expiry) is in both audit trails yet.
    end_recorded = models.BooleanField(default=False, editable=False)

    objects = SupportAccessQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at"]
        verbose_name = _("support access")
        verbose_name_plural = _("support accesses")
        indexes = [models.Index(fields=["staff", "organization", "expires_at"])]
        permissions = [("read_write_supportaccess", _("Can open read-write support access"))]

    def __str__(self):
        return f"{self.staff} in {self.organization} ({self.mode_label})"

    @property
    def mode_label(self) -> str:
        return str(_("read-write") if self.read_write else _("read-only"))

    @property
    def is_active(self) -> bool:
        now = timezone.now()
        return self.ended_at is None and self.started_at <= now < self.expires_at
