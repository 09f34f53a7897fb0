"""Developer machine: debug on, console email, *.localhost domains."""

from .base import *  # noqa: F401,F403
from .env import env_bool

DEBUG = env_bool("DEBUG", True)
STORAGES["staticfiles"] = {  # noqa: F405
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
}

# WhiteNoise serves from the finders here; the directory only has to exist.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405
