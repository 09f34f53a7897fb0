from django.db import models
from django.utils.translation import gettext_lazy as _


class ActorType(models.TextChoices):
    USER = "user", _("User")
    TOKEN = "token", _("API token")
    SYSTEM = "system", _("System")


class AuditEvent(models.Model):
    """One entry of the append-only, hash-chained trail. Every schema (each organisation, and
    public for platform events) has its own chain; a database trigger refuses UPDATE and
    DELETE."""

    id = models.BigAutoField(primary_key=True)  # taken from its sequence before hashing
    timestamp = models.DateTimeField(db_index=True)
    organization = models.CharField(max_length=64, blank=True)
    actor_type = models.CharField(max_length=8, choices=ActorType.choices)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=254, blank=True, db_index=True)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_label = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self):
        who = self.actor_label or self.actor_type
        return f"{self.timestamp:%Y-%m-%d %H:%M:%S} {who} {self.action}"


class AuditAnchor(models.Model):
    """Where the chain starts after older events were archived: the hash of the last archived
    event, so that what remains still verifies."""

    archived_through_id = models.BigIntegerField()
    anchor_hash = models.CharField(max_length=64)
    archived_count = models.IntegerField()
    archive_file = models.CharField(max_length=500)
    archived_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-archived_through_id"]

    def __str__(self):
        return f"anchor through event {self.archived_through_id}"
