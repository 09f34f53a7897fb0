"""The floor project's settings: Django and DRF with nothing of WindFlow's, on the same
PostgreSQL (DATABASE_URL) with the same connection pool sizes (DATABASE_POOL_*), reading the
organisation's schema WINDFLOW_FLOOR_SCHEMA."""

import os

import dj_database_url

SECRET_KEY = "floor-benchmark-only"  # noqa: S105 - serves nothing but the benchmark
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["rest_framework", "support.floor"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "support.floor.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"])}
DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"]["OPTIONS"] = {
    "options": f"-c search_path={os.environ['WINDFLOW_FLOOR_SCHEMA']}",
    "pool": {
        "min_size": int(os.environ.get("DATABASE_POOL_MIN", "2")),
        "max_size": int(os.environ.get("DATABASE_POOL_MAX", "8")),
        "timeout": int(os.environ.get("DATABASE_POOL_TIMEOUT", "10")),
    },
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_THROTTLE_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
