from django.conf import settings
from django.db import models


class Probe(models.Model):
    name = models.CharField(max_length=50)
    if settings.WINDFLOW_BENCH_SCALE_COLUMN:
        note = models.CharField(max_length=50, blank=True, default="")

    def __str__(self):
        return self.name
