"""Developer machine: debug on, console email, *.localhost domains."""

from .base import *  # noqa: F401,F403
from .env import env_bool

DEBUG = env_bool("DEBUG", True)
STORAGES["staticfiles"] = {  # noqa: F405
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
}
