"""Test run: the test tooling exports DATABASE_URL and REDIS_URL of its throwaway servers."""

import os
import tempfile

from .base import *
from .env import env_bool, env_int, env_str

DEBUG = False
SECRET_KEY = "test-secret-key-not-for-production-0123456789abcdef"  # noqa: S105
SIMPLE_JWT["SIGNING_KEY"] = SECRET_KEY
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
ACCOUNT_RATE_LIMITS = {"login_failed": "50/15m/ip,5/15m/key"}
DATABASES["default"]["CONN_MAX_AGE"] = 0
# No spare schemas unless a test asks for them (tests/tenants/test_spares.py): sign-ups clone.
WINDFLOW_SPARE_SCHEMAS = env_int("WINDFLOW_SPARE_SCHEMAS", 0)

# WhiteNoise serves from the finders here; the directory only has to exist.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# Local Docker engines: platform staff hand them out in the admin (as in `make run`).
WINDFLOW_LOCAL_TARGETS = env_str("WINDFLOW_LOCAL_TARGETS", "staff")
# Only the test run's own engine is allowed: the private dockerd that devtools.pytest_plugin
# points DOCKER_HOST at (tests/conftest.py starts it), never the machine's own engine.
_TEST_ENGINE = os.environ.get("DOCKER_HOST", "")
if _TEST_ENGINE.startswith("unix://"):
    WINDFLOW_LOCAL_SOCKETS = [_TEST_ENGINE.removeprefix("unix://")]

# The live workers of the tests run jobs only: a test that needs the scheduler runs it (the
# fault suite's instance sets `worker`, as production does).
WINDFLOW_SCHEDULER = env_str("WINDFLOW_SCHEDULER", "separate")
# Git repositories served on loopback over git:// and http:// (devtools/gitserver.py).
WINDFLOW_GIT_ALLOW_PRIVATE = env_bool("WINDFLOW_GIT_ALLOW_PRIVATE", True)
WINDFLOW_GIT_ALLOW_INSECURE = env_bool("WINDFLOW_GIT_ALLOW_INSECURE", True)
# The revisions' files and secrets on the test servers (the same machine): never the real
# /var/lib/windflow or /run/windflow of the machine the tests run on.
WINDFLOW_STACK_FILES_ROOT = env_str(
    "WINDFLOW_STACK_FILES_ROOT", os.path.join(tempfile.gettempdir(), "windflow-test-stacks")
)
WINDFLOW_STACK_SECRETS_ROOT = env_str(
    "WINDFLOW_STACK_SECRETS_ROOT", os.path.join(tempfile.gettempdir(), "windflow-test-secrets")
)
