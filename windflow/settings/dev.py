"""Developer machine: debug on, console email, *.localhost domains."""

from .base import *
from .env import env_bool, env_str

DEBUG = env_bool("DEBUG", True)
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}

# WhiteNoise serves from the finders here; the directory only has to exist.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# Local Docker engines: platform staff hand them out (make run gives the demo organisation one).
WINDFLOW_LOCAL_TARGETS = env_str("WINDFLOW_LOCAL_TARGETS", "staff")
# Git repositories served on loopback over git:// and http:// (devtools/gitserver.py).
WINDFLOW_GIT_ALLOW_PRIVATE = env_bool("WINDFLOW_GIT_ALLOW_PRIVATE", True)
WINDFLOW_GIT_ALLOW_INSECURE = env_bool("WINDFLOW_GIT_ALLOW_INSECURE", True)
# Project files and secret files of stacks (relative binds, configs, secrets): under var/, so
# that `make run` works as any user (the production defaults are system folders).
WINDFLOW_STACK_FILES_ROOT = env_str(
    "WINDFLOW_STACK_FILES_ROOT", str(BASE_DIR / "var" / "stack-files")
)
WINDFLOW_STACK_SECRETS_ROOT = env_str(
    "WINDFLOW_STACK_SECRETS_ROOT", str(BASE_DIR / "var" / "stack-secrets")
)
