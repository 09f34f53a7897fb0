"""Settings shared by every environment. Values come from the environment (12-factor)."""

from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from .env import email_settings, env_bool, env_int, env_list, env_str, redis_url_with_db

BASE_DIR = Path(__file__).resolve().parent.parent.parent

SECRET_KEY = env_str("SECRET_KEY", "dev-insecure-change-me")
DEBUG = env_bool("DEBUG", False)

# Every organisation lives at <slug>.<base domain>; the base domain itself is the public site.
WINDFLOW_BASE_DOMAIN = env_str("WINDFLOW_BASE_DOMAIN", "localhost")
WINDFLOW_PUBLIC_URL = env_str("WINDFLOW_PUBLIC_URL", f"http://{WINDFLOW_BASE_DOMAIN}:8000")
# Whom members of a suspended organisation are told to contact (its banner).
WINDFLOW_SUPPORT_CONTACT = env_str("WINDFLOW_SUPPORT_CONTACT", "support@windflow.local")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [WINDFLOW_BASE_DOMAIN, f".{WINDFLOW_BASE_DOMAIN}"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# --- Applications -----------------------------------------------------------------------------

SHARED_APPS = [
    "django_tenants",
    "windflow",
    "apps.tenants",
    "apps.accounts",
    "apps.audit",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.admin",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "mozilla_django_oidc",
    "rest_framework",
    "rest_framework_simplejwt",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "channels",
    "django_dramatiq",
    "guardian",
]

# Tables created in every organisation's schema. contenttypes, auth, admin and guardian are
# in both lists so that object grants and admin history use the tenant's own content types.
TENANT_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.admin",
    "guardian",
    "apps.audit",
    "apps.environments",
    "apps.secrets",
    "apps.targets",
    "apps.stacks",
    "apps.sources",
    "apps.deployments",
    "apps.notifications",
]

INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Organization"
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_NAME = "public"
# New organisations are cloned from this migrated template schema (fast provisioning).
TENANT_BASE_SCHEMA = "tenant_template"
TENANT_CREATION_FAKES_MIGRATIONS = True
# Schemas cloned ahead of time, so that signing up renames one instead of cloning
# (apps.tenants.spares); the scheduler refills them every WINDFLOW_SPARE_REFILL_SECONDS.
# 0 disables the pool.
WINDFLOW_SPARE_SCHEMAS = env_int("WINDFLOW_SPARE_SCHEMAS", 3)
WINDFLOW_SPARE_REFILL_SECONDS = env_int("WINDFLOW_SPARE_REFILL_SECONDS", 30)
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]
# Set the search path once per connection and tenant change, not before every query.
TENANT_LIMIT_SET_CALLS = True

MIDDLEWARE = [
    # Proxy headers (X-Forwarded-Proto...) only from WINDFLOW_TRUSTED_PROXIES.
    "windflow.clientaddress.UntrustedProxyHeadersMiddleware",
    "windflow.middleware.RequestIdMiddleware",
    # 503 naming PostgreSQL or Redis when either is away (never 500); serves /healthz.
    "windflow.middleware.DependencyUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.tenants.middleware.OrganizationMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "apps.accounts.middleware.UserLanguageMiddleware",
    "windflow.context.ActorContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Platform staff in an organisation only through a support access; read-only enforced.
    "apps.accounts.middleware.SupportAccessMiddleware",
    "apps.accounts.middleware.MembershipMiddleware",
    # A suspended organisation reads but changes nothing (apps.tenants.suspension).
    "apps.tenants.middleware.SuspensionMiddleware",
    "windflow.middleware.ContentSecurityPolicyMiddleware",
    "windflow.middleware.RefuseNulMiddleware",
]

ROOT_URLCONF = "windflow.urls"
PUBLIC_SCHEMA_URLCONF = "windflow.urls_public"
ASGI_APPLICATION = "windflow.asgi.application"
WSGI_APPLICATION = "windflow.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "apps.accounts.context_processors.organization",
            ],
        },
    },
]

# --- Data stores ------------------------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL", "postgres://postgres@127.0.0.1:54329/windflow")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, engine="windflow.db.postgresql")}
# A connection pool rather than persistent connections: under ASGI each request may run in a
# new thread, and per-thread connections pile up until PostgreSQL refuses more clients.
DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
    "min_size": env_int("DATABASE_POOL_MIN", 2),
    "max_size": env_int("DATABASE_POOL_MAX", 8),
    "timeout": env_int("DATABASE_POOL_TIMEOUT", 10),
    # A pooled connection is replaced after this many seconds (psycopg_pool's default is 1 h).
    "max_lifetime": env_int("DATABASE_POOL_MAX_LIFETIME", 600),
}
# A connection that has visited more distinct schemas than this is closed when released,
# not pooled: PostgreSQL backends keep catalog caches per visited schema
# (windflow.db.postgresql). 0: no limit.
WINDFLOW_DB_SCHEMAS_PER_CONNECTION = env_int("WINDFLOW_DB_SCHEMAS_PER_CONNECTION", 100)
# With a pool, each pooled connection is checked before it is handed out: after a PostgreSQL
# restart the dead ones are replaced instead of failing the next query. The check costs no
# round trip while the connection's socket is quiet (windflow.db.postgresql).
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:63799/0")
# redis-py retries a refused connection 3 times with a backoff of up to 10 s by default: a
# request would wait seconds for each Redis call while Redis is away. One immediate retry
# covers a dropped connection; after that the caller's own fallback or retry decides (the hot
# cache reads the database, a publish is dropped, the scheduler backs off, a page says 503).
REDIS_CLIENT_OPTIONS = {
    "SOCKET_CONNECT_TIMEOUT": 2,
    "SOCKET_TIMEOUT": 2,
    "CONNECTION_POOL_KWARGS": {"retry": Retry(NoBackoff(), 1)},
}
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": redis_url_with_db(REDIS_URL, 0),
        # django_tenants' schema prefix, except for the sign-in lockout (one per person).
        "KEY_FUNCTION": "windflow.hotcache.tenant_cache_key",
        "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
        "OPTIONS": REDIS_CLIENT_OPTIONS,
    },
    # Shared by every organisation (no schema prefix): hot lookups of hosts, tokens and
    # memberships, invalidated by the services that change them.
    "shared": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": redis_url_with_db(REDIS_URL, 0),
        "KEY_PREFIX": "shared",
        "OPTIONS": REDIS_CLIENT_OPTIONS,
    },
}
# Sessions live in PostgreSQL (the public schema: one per person, whatever the host), so they
# survive a Redis restart; the scheduler removes the expired ones daily.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 14 * 24 * 3600)
# Set to ".example.com" in production so one session covers every organisation's subdomain.
SESSION_COOKIE_DOMAIN = env_str("SESSION_COOKIE_DOMAIN")
CSRF_COOKIE_DOMAIN = SESSION_COOKIE_DOMAIN
# The language chosen while signed out follows the person to every organisation's host.
LANGUAGE_COOKIE_DOMAIN = SESSION_COOKIE_DOMAIN

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py's 5 s read timeout races channels_redis's 5 s blocking read and kills
            # idle or busy consumers: give reads more room than the blocking read needs.
            "hosts": [
                {
                    "address": redis_url_with_db(REDIS_URL, 2),
                    "socket_timeout": 30,
                    # Redis away: a publish fails fast (it is best-effort), never hangs.
                    "socket_connect_timeout": 2,
                    "retry": AsyncRetry(NoBackoff(), 1),
                }
            ],
            "prefix": "windflow",
        },
    }
}

DRAMATIQ_BROKER = {
    "BROKER": "dramatiq.brokers.redis.RedisBroker",
    "OPTIONS": {"url": redis_url_with_db(REDIS_URL, 1), "namespace": "windflow"},
    "MIDDLEWARE": [
        "dramatiq.middleware.AgeLimit",
        "dramatiq.middleware.TimeLimit",
        "dramatiq.middleware.Callbacks",
        "dramatiq.middleware.Retries",
        "django_dramatiq.middleware.DbConnectionsMiddleware",
        "windflow.workers.TenantMiddleware",
        # Each job, as the admin's task list shows it (django_dramatiq's Task rows).
        "windflow.workers.JobTrackingMiddleware",
        "windflow.workers.HeartbeatMiddleware",
        "windflow.scheduler.SchedulerMiddleware",
    ],
}
DRAMATIQ_AUTODISCOVER_MODULES = ["tasks"]
WINDFLOW_WORKER_HEARTBEAT_SECONDS = 10
# How long the admin's task list keeps a finished job (windflow.workers.JobTrackingMiddleware).
WINDFLOW_JOB_HISTORY_DAYS = env_int("WINDFLOW_JOB_HISTORY_DAYS", 7)
# Where the periodic-job scheduler runs: `worker` (a thread of each worker process; the
# default, one process fewer) or `separate` (only `manage.py run_scheduler` runs it).
WINDFLOW_SCHEDULER = env_str("WINDFLOW_SCHEDULER", "worker")
if WINDFLOW_SCHEDULER not in ("worker", "separate"):
    raise ImproperlyConfigured(
        f"WINDFLOW_SCHEDULER must be worker or separate, got {WINDFLOW_SCHEDULER!r}"
    )

# `manage.py migrate_all`: organisation schemas migrated at once (0: one per core).
WINDFLOW_MIGRATE_PROCESSES = env_int("WINDFLOW_MIGRATE_PROCESSES", 0)

# --- Authentication ---------------------------------------------------------------------------

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "allauth.account.auth_backends.AuthenticationBackend",
    "guardian.backends.ObjectPermissionBackend",
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "account_login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

ACCOUNT_ADAPTER = "apps.accounts.adapters.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = env_str("ACCOUNT_EMAIL_VERIFICATION", "optional")
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_PREVENT_ENUMERATION = True
# Lockout: after 5 failed logins for one account (or 20 from one address) within 15 minutes,
# further attempts are refused until the window passes.
ACCOUNT_RATE_LIMITS = {
    "login_failed": env_str("WINDFLOW_LOGIN_LOCKOUT", "20/15m/ip,5/15m/key"),
}
# Proxies whose X-Forwarded-For is believed (addresses or CIDR networks, comma-separated).
# Empty: the socket address is the client's, for throttling, the lockout and the audit trail.
WINDFLOW_TRUSTED_PROXIES = env_list("WINDFLOW_TRUSTED_PROXIES", [])
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "WindFlow"

# Single sign-on with any OpenID Connect provider (Keycloak, Authentik, Okta...).
OIDC_RP_CLIENT_ID = env_str("OIDC_RP_CLIENT_ID")
OIDC_RP_CLIENT_SECRET = env_str("OIDC_RP_CLIENT_SECRET")
OIDC_OP_AUTHORIZATION_ENDPOINT = env_str("OIDC_OP_AUTHORIZATION_ENDPOINT")
OIDC_OP_TOKEN_ENDPOINT = env_str("OIDC_OP_TOKEN_ENDPOINT")
OIDC_OP_USER_ENDPOINT = env_str("OIDC_OP_USER_ENDPOINT")
OIDC_OP_JWKS_ENDPOINT = env_str("OIDC_OP_JWKS_ENDPOINT")
OIDC_RP_SIGN_ALGO = env_str("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = env_str("OIDC_RP_SCOPES", "openid email profile")
OIDC_PROVIDER_NAME = env_str("OIDC_PROVIDER_NAME", "SSO")
OIDC_CREATE_USER = env_bool("OIDC_CREATE_USER", True)
OIDC_REQUIRE_VERIFIED_EMAIL = env_bool("OIDC_REQUIRE_VERIFIED_EMAIL", True)
OIDC_TIMEOUT = 5
OIDC_AUTHENTICATE_CLASS = "apps.accounts.oidc.WindFlowOIDCAuthenticateView"
OIDC_CALLBACK_CLASS = "apps.accounts.oidc.WindFlowOIDCCallbackView"
LOGIN_REDIRECT_URL_FAILURE = "/accounts/login/"
WINDFLOW_OIDC_ENABLED = bool(OIDC_RP_CLIENT_ID and OIDC_OP_AUTHORIZATION_ENDPOINT)
if WINDFLOW_OIDC_ENABLED:
    AUTHENTICATION_BACKENDS.append("apps.accounts.oidc.WindFlowOIDCBackend")

GUARDIAN_RAISE_403 = False
ANONYMOUS_USER_NAME = None

# --- REST API ---------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.AccessTokenAuthentication",
        "apps.accounts.authentication.OrganizationJWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["windflow.api.permissions.IsOrganizationMember"],
    # NUL characters and JSON nested deeper than 64 levels get a 400 naming the rule.
    "DEFAULT_PARSER_CLASSES": [
        "windflow.api.parsers.JSONParser",
        "windflow.api.parsers.FormParser",
        "windflow.api.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "windflow.api.pagination.Pagination",
    "PAGE_SIZE": 25,
    "DEFAULT_FILTER_BACKENDS": [
        # django-filter's, skipped when the query string names no filter (the common case).
        "windflow.api.filters.FilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "windflow.api.throttling.AnonRateThrottle",
        "windflow.api.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("WINDFLOW_API_THROTTLE_ANON", "120/minute"),
        "user": env_str("WINDFLOW_API_THROTTLE_USER", "12000/minute"),
    },
    "EXCEPTION_HANDLER": "windflow.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=15),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=7),
    "AUTH_HEADER_TYPES": ("Bearer",),
    "SIGNING_KEY": SECRET_KEY,
    "UPDATE_LAST_LOGIN": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "WindFlow API",
    "DESCRIPTION": "Deploy and operate containerised applications on your own servers.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "EnvironmentKindEnum": "apps.environments.choices.EnvironmentKind",
        "TargetKindEnum": "apps.targets.choices.TargetKind",
        "TargetStatusEnum": "apps.targets.choices.TargetStatus",
        "RunStatusEnum": "apps.targets.choices.RunStatus",
        "DeploymentStatusEnum": "apps.deployments.choices.DeploymentStatus",
        "DeploymentKindEnum": "apps.deployments.choices.DeploymentKind",
        "ServicePhaseEnum": "apps.deployments.choices.ServicePhase",
        "LogLevelEnum": "apps.deployments.choices.LogLevel",
        "RoleEnum": "apps.accounts.choices.Role",
        "TokenScopeEnum": "apps.accounts.choices.TokenScope",
        "GitAuthEnum": "apps.sources.choices.GitAuth",
        "SourceStatusEnum": "apps.sources.choices.SourceStatus",
        "SourceKindEnum": "apps.stacks.choices.SourceKind",
    },
    "SECURITY": [{"bearerAuth": []}],
    "APPEND_COMPONENTS": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
}

# --- Email ------------------------------------------------------------------------------------

vars().update(email_settings(env_str("EMAIL_URL", "console://")))
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "WindFlow <noreply@windflow.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Internationalisation ---------------------------------------------------------------------

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("fr", _("French"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files -----------------------------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# --- WindFlow ---------------------------------------------------------------------------------

WINDFLOW_INVITATION_DAYS = env_int("WINDFLOW_INVITATION_DAYS", 7)
WINDFLOW_HANDOFF_SECONDS = 60
# Secrets: HashiCorp Vault / OpenBao when VAULT_ADDR is set, else encrypted in PostgreSQL with
# a per-organisation data key wrapped by WINDFLOW_MASTER_KEY (32 random bytes, base64).
VAULT_ADDR = env_str("VAULT_ADDR")
VAULT_TOKEN = env_str("VAULT_TOKEN")
VAULT_ROLE_ID = env_str("VAULT_ROLE_ID")
VAULT_SECRET_ID = env_str("VAULT_SECRET_ID")
VAULT_KV_MOUNT = env_str("VAULT_KV_MOUNT", "secret")
VAULT_PATH_PREFIX = env_str("VAULT_PATH_PREFIX", "windflow")
VAULT_TIMEOUT = env_int("VAULT_TIMEOUT", 5)
WINDFLOW_SECRETS_BACKEND = env_str("WINDFLOW_SECRETS_BACKEND", "vault" if VAULT_ADDR else "local")
# Development only; prod refuses to start without its own key.
WINDFLOW_MASTER_KEY = env_str("WINDFLOW_MASTER_KEY", "ZGV2ZWxvcG1lbnQtb25seS1tYXN0ZXIta2V5LTMyYnk=")
WINDFLOW_MASTER_KEY_PREVIOUS = env_str("WINDFLOW_MASTER_KEY_PREVIOUS")
WINDFLOW_TARGET_SWEEP_SECONDS = env_int("WINDFLOW_TARGET_SWEEP_SECONDS", 300)
# Seconds one Docker API call of a deployment may take: a server that freezes fails after it.
WINDFLOW_DEPLOY_STEP_TIMEOUT = env_int("WINDFLOW_DEPLOY_STEP_TIMEOUT", 60)
WINDFLOW_AUDIT_ARCHIVE_DIR = env_str("WINDFLOW_AUDIT_ARCHIVE_DIR", str(BASE_DIR / "var" / "audit"))
# Local Docker engines (a unix socket on the machine WindFlow runs on) belong to the platform
# operator. off: no organisation may use one; staff: platform staff create engines in the admin
# and assign them to organisations; all: any owner picks a socket (single-organisation install).
# Each settings module sets the mode (prod: off, dev and test: staff); the environment wins.
WINDFLOW_LOCAL_TARGETS_MODES = ("off", "staff", "all")
WINDFLOW_LOCAL_TARGETS = env_str("WINDFLOW_LOCAL_TARGETS", "off")
if WINDFLOW_LOCAL_TARGETS not in WINDFLOW_LOCAL_TARGETS_MODES:
    raise ImproperlyConfigured(
        f"WINDFLOW_LOCAL_TARGETS must be off, staff or all, got {WINDFLOW_LOCAL_TARGETS!r}"
    )
# The only unix sockets WindFlow ever dials for a target (comma-separated absolute paths).
WINDFLOW_LOCAL_SOCKETS = env_list("WINDFLOW_LOCAL_SOCKETS", ["/var/run/docker.sock"])
if any(not path.startswith("/") for path in WINDFLOW_LOCAL_SOCKETS):
    raise ImproperlyConfigured("WINDFLOW_LOCAL_SOCKETS must list absolute paths of unix sockets.")
# Project sources (issue 13). The worker's Git clones and unpacked archives: only a cache
# (archives live in PostgreSQL, commits in their repository), trimmed to _MAX_BYTES.
WINDFLOW_SOURCE_CACHE_DIR = env_str(
    "WINDFLOW_SOURCE_CACHE_DIR", str(BASE_DIR / "var" / "source-cache")
)
WINDFLOW_SOURCE_CACHE_MAX_BYTES = env_int("WINDFLOW_SOURCE_CACHE_MAX_BYTES", 2 * 1024**3)
# The largest project archive accepted from the page, the API or the CLI (compressed size).
WINDFLOW_UPLOAD_MAX_BYTES = env_int("WINDFLOW_UPLOAD_MAX_BYTES", 100 * 1024**2)
# Git URLs whose host resolves to a loopback or private address: refused unless True (a tenant
# must not reach the platform's own network). Dev and test serve repositories on loopback.
WINDFLOW_GIT_ALLOW_PRIVATE = env_bool("WINDFLOW_GIT_ALLOW_PRIVATE", False)
# Unencrypted git:// and http:// repository URLs: refused unless True (dev and test servers).
WINDFLOW_GIT_ALLOW_INSECURE = env_bool("WINDFLOW_GIT_ALLOW_INSECURE", False)
# The files a stack's revisions mount (relative binds, configs), on each server:
# <root>/<stack uid>/<revision>/; secrets under a tmpfs-backed root (mode 0400). The folders of
# the newest _KEEP revisions are kept (and always the running and the previous good one).
WINDFLOW_STACK_FILES_ROOT = env_str("WINDFLOW_STACK_FILES_ROOT", "/var/lib/windflow/stacks")
WINDFLOW_STACK_SECRETS_ROOT = env_str("WINDFLOW_STACK_SECRETS_ROOT", "/run/windflow/secrets")
WINDFLOW_STACK_FILES_KEEP = env_int("WINDFLOW_STACK_FILES_KEEP", 5)
# The largest build context sent to a server's engine, per build: (bytes).
WINDFLOW_BUILD_CONTEXT_MAX_BYTES = env_int("WINDFLOW_BUILD_CONTEXT_MAX_BYTES", 512 * 1024**2)
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "filters": {"redact_secrets": {"()": "windflow.redaction.RedactingFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django_tenants": {"level": "WARNING"},
    },
}
