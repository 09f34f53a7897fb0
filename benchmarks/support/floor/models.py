from django.db import models


class Environment(models.Model):
    """An organisation's `environments_environment` table, read only (never migrated here)."""

    name = models.CharField(max_length=60)
    slug = models.SlugField(max_length=60)
    kind = models.CharField(max_length=16)
    protected = models.BooleanField()
    description = models.TextField()
    variables = models.JSONField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        app_label = "floor"
        managed = False
        db_table = "environments_environment"
        ordering = ["name"]

    def __str__(self):
        return self.name
