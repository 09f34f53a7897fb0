"""Test run: the test tooling exports DATABASE_URL and REDIS_URL of its throwaway servers."""

from windflow.localservices import DOCKER_SOCKET

from .base import *
from .env import env_str

DEBUG = False
SECRET_KEY = "test-secret-key-not-for-production-0123456789abcdef"  # noqa: S105
SIMPLE_JWT["SIGNING_KEY"] = SECRET_KEY
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
ACCOUNT_RATE_LIMITS = {"login_failed": "50/15m/ip,5/15m/key"}
DATABASES["default"]["CONN_MAX_AGE"] = 0

# WhiteNoise serves from the finders here; the directory only has to exist.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# Local Docker engines: platform staff hand them out in the admin (as in `make run`).
WINDFLOW_LOCAL_TARGETS = env_str("WINDFLOW_LOCAL_TARGETS", "staff")
# The engine the test tooling starts (tests/conftest.py, ensure_docker_engine) is allowed.
WINDFLOW_LOCAL_SOCKETS = [*WINDFLOW_LOCAL_SOCKETS, DOCKER_SOCKET]
