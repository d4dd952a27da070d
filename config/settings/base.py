"""Settings shared by every environment. Values come from the environment (django-environ)."""

from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("SECRET_KEY", default="insecure-development-key-change-me")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",  # its table only: accounts.0001 moved its tokens into accounts.ApiToken
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "django_htmx",
    "axes",
    "accounts",
    "incidents",
    "escalation",
    "reporting",
    "interviews",
    "intake",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Django's, with the user and their roles read by one statement (incidents.signin).
    "incidents.signin.AuthenticationMiddleware",
    "config.errors.StaffOnlyTechnicalPages",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "incidents.views.common.CSPMiddleware",  # django-csp's, with the settings' policy built once
    "django_htmx.middleware.HtmxMiddleware",
    "incidents.audit.AuditMiddleware",  # one INSERT per request for the audit trail of restricted incidents
    # Last: turns a sign-in that django-axes locked out into accounts.lockout.lockout_response.
    "axes.middleware.AxesMiddleware",
]

# django-axes first: it refuses a locked-out sign-in before the password is even checked.
AUTHENTICATION_BACKENDS = [
    "accounts.backends.AxesBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'incidentdesk.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server, the worker and the scheduler read while one of them writes;
    # IMMEDIATE takes the write lock at BEGIN so two writers queue instead of deadlocking.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
        }
    )
    DATABASES["default"]["OPTIONS"].setdefault("timeout", 20)
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Persistent connections: a Celery worker delivering a burst of notifications would otherwise open a new
# connection per task (about a third of a delivery's time on PostgreSQL). Checked before reuse.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Reports and the CSV export may read from a PostgreSQL streaming replica (config.dbrouter). Unset: the
# primary serves them like everything else. Writes never go there.
if env("REPORTS_DATABASE_URL", default=""):
    DATABASES["reports"] = env.db("REPORTS_DATABASE_URL")
    DATABASES["reports"]["CONN_MAX_AGE"] = DATABASES["default"]["CONN_MAX_AGE"]
    DATABASES["reports"]["CONN_HEALTH_CHECKS"] = True
REPORTS_DATABASE_ALIAS: str | None = "reports" if "reports" in DATABASES else None
DATABASE_ROUTERS = ["config.dbrouter.ReportsRouter"]
# Behind PgBouncer in transaction pooling mode ("transaction"), a server-side cursor could outlive the
# transaction that pinned its server connection: Django must not declare WITH HOLD cursors, and the CSV
# export walks its rows in keyset chunks instead (incidents.export). docs/operations.md has the settings.
DATABASE_POOLING = env("DATABASE_POOLING", default="")
if DATABASE_POOLING == "transaction":
    for _alias in DATABASES.values():
        _alias["DISABLE_SERVER_SIDE_CURSORS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The bench's ceilings (bench/suite.py): a bare JSON view and a bare one-insert view served by the same
# process as the app, so every figure is measured against what this stack can do at most. Never in
# production (config/settings/production.py forces it off).
BENCH_CEILING_VIEWS = env.bool("BENCH_CEILING_VIEWS", default=False)

# In-process by default (`make run`); production.py requires a shared one (Redis), because throttles, rate
# limits and login lockouts kept per process would let each worker count on its own.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

# Sessions read from the shared cache (written through to the database) when it is Redis: every console
# request and 30 s poll reads one. Never an in-process cache: a session signed out in one process would live
# on in the others. Django's `cached_db` and `db`, with the database read written out once (accounts.sessions).
SESSION_ENGINE = (
    "accounts.sessions.cached_db"
    if CACHES["default"]["BACKEND"].endswith("RedisCache")
    else "accounts.sessions.db"
)

# Sign-in lockout (django-axes) on the web login, the admin login and POST /api/v1/auth/token/: after
# AXES_FAILURE_LIMIT failures for one username from one address, that pair is refused (429) for the
# cool-off. Counted in the shared cache when it is Redis (production), otherwise in the database (an
# in-process cache would count per process).
AXES_HANDLER = (
    "axes.handlers.cache.AxesCacheHandler"
    if CACHES["default"]["BACKEND"].endswith("RedisCache")
    else "axes.handlers.database.AxesDatabaseHandler"
)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
# API tokens (accounts.ApiToken): each sign-in through the token endpoint makes one; the least recently used
# beyond this many per person are revoked.
API_TOKENS_PER_USER = env.int("API_TOKENS_PER_USER", default=20)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    # Attachments live outside any public URL and are served only through an authorised view.
    "attachments": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {
            "location": str(env.path("ATTACHMENTS_ROOT", default=VAR_DIR / "attachments")),
            "base_url": None,
        },
    },
}
FILE_UPLOAD_PERMISSIONS = 0o640
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o750

# Attachment limits (per file) and the types the desk accepts.
ATTACHMENT_MAX_BYTES = env.int("ATTACHMENT_MAX_BYTES", default=10 * 1024 * 1024)
ATTACHMENT_ALLOWED_EXTENSIONS = env.list(
    "ATTACHMENT_ALLOWED_EXTENSIONS",
    default=["png", "jpg", "jpeg", "gif", "webp", "pdf", "txt", "log", "csv", "json", "zip", "eml"],
)
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# Incident lifecycle
INCIDENT_AUTO_CLOSE_AFTER = timedelta(hours=env.float("INCIDENT_AUTO_CLOSE_HOURS", default=72))
INCIDENT_RESTRICTED_DOMAINS_DEFAULT = ["security", "medical"]
# Problems: N incidents of one category within the window propose a problem record (once).
RECURRENCE_THRESHOLD = env.int("RECURRENCE_THRESHOLD", default=3)
RECURRENCE_WINDOW = timedelta(hours=env.float("RECURRENCE_WINDOW_HOURS", default=24))
FOLLOW_UP_REMIND_DAYS_BEFORE = env.int("FOLLOW_UP_REMIND_DAYS_BEFORE", default=1)

# E-mail
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="IncidentDesk <desk@localhost>")
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000")

# Celery: the broker transports prompts; deadlines and decisions live in the database.
# A Redis broker's options (tests/test_celery.py checks the queue order on a Redis server of its own).
REDIS_TRANSPORT_OPTIONS: dict[str, Any] = {
    "visibility_timeout": 300,
    "unacked_restore_throttle": 1,
    "socket_timeout": 5,
    "socket_connect_timeout": 2,
    # A worker takes from its queues in the order it was given them (`-Q urgent,celery`): every prompt
    # waiting in `urgent` (breaches, escalation steps) before any in `celery` (warnings, digests). The
    # default, round robin, alternates between them, so a burst of warnings halved the breaches' pace.
    "queue_order_strategy": "priority",
}
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=env("REDIS_URL", default="filesystem://"))
if CELERY_BROKER_URL == "filesystem://":
    _queue_dir = Path(env.str("CELERY_FILESYSTEM_BROKER_DIR", default=str(VAR_DIR / "celery-broker")))
    _queue_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        # Exchange tables beside the queue (kombu's default is ./control in the working directory).
        "control_folder": str(_queue_dir / "control"),
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = dict(REDIS_TRANSPORT_OPTIONS)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_TIMEOUT = 2
# Celery's Django fixup closes every database connection before and after each task unless this is set;
# config/celery.py closes them as Django does after a request instead (broken, an error, CONN_MAX_AGE).
# After this many tasks the fixup still closes them (a bound on a connection's life in a busy worker).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
# The sweep decides every due timer; it must never wait behind a burst of deliveries it created itself
# (1,000 simultaneous breaches are 2,000 deliveries). It has a queue of its own, consumed by its own worker
# (Procfile.dev, docker-compose.yml); a single worker can also take both: `-Q urgent,celery,sweep`.
# Deliveries of breaches and escalation steps are prompted on the `urgent` queue, which the delivery
# workers consume beside `celery` (escalation.delivery.URGENT_QUEUE).
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_ROUTES = {"escalation.tasks.sweep": {"queue": "sweep"}}
# A hung or absent broker must not hold a web request: publish fails fast, the sweep republishes.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
CELERY_BEAT_SCHEDULE = {
    "escalation-sweep": {
        "task": "escalation.tasks.sweep",
        "schedule": timedelta(seconds=env.float("SLA_SWEEP_SECONDS", default=5)),
        "options": {"expires": 30},
    },
    "erase-expired-interview-candidates": {
        "task": "interviews.tasks.erase_expired_candidates",
        "schedule": timedelta(hours=6),
    },
    "remind-problem-follow-ups": {
        "task": "incidents.tasks.remind_follow_ups",
        "schedule": crontab(hour=7, minute=0),  # once a day; a second run that day queues nothing
    },
    "auto-close-resolved-incidents": {
        "task": "incidents.tasks.auto_close_resolved",
        "schedule": timedelta(seconds=env.int("AUTO_CLOSE_SWEEP_SECONDS", default=60)),
    },
    # Hourly, not weekly: a digest missed at the start of the week (beat down) goes out later; each goes once.
    "reporting-weekly-digest": {
        "task": "reporting.tasks.send_weekly_digests",
        "schedule": timedelta(hours=env.int("DIGEST_SWEEP_HOURS", default=1)),
    },
    # Rebuilds the per-day report figures of changed days; reports are exact in between (reporting/daily.py).
    "reporting-refresh-day-figures": {
        "task": "reporting.tasks.refresh_day_figures",
        "schedule": timedelta(seconds=env.int("REPORT_DAYS_REFRESH_SECONDS", default=60)),
        "options": {"expires": 120},
    },
}

# Escalation engine and notifications
NOTIFICATION_LEASE_SECONDS = env.int("NOTIFICATION_LEASE_SECONDS", default=30)
NOTIFICATION_BACKOFF_SECONDS = [
    int(s)
    for s in env.list("NOTIFICATION_BACKOFF_SECONDS", default=["30", "120", "600", "3600", "21600", "86400"])
]
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10)
HEALTH_MAX_LAG_SECONDS = env.int("HEALTH_MAX_LAG_SECONDS", default=60)
# Who hears of a notification that could not be delivered after every retry ("dead"), besides the
# team's manager: the desk's administrators (ADMINS) and any addresses listed here.
NOTIFICATION_DEAD_ALERT_EMAILS = env.list("NOTIFICATION_DEAD_ALERT_EMAILS", default=[])

# Intake: monitoring events and inbound e-mail (intake/, docs/intake.md)
INTAKE_EVENT_MAX_BYTES = env.int("INTAKE_EVENT_MAX_BYTES", default=512 * 1024)
INTAKE_EMAIL_MAX_BYTES = env.int("INTAKE_EMAIL_MAX_BYTES", default=25 * 1024 * 1024)
# Deeper MIME nesting or more attachments than these refuse the whole message (recorded, exit 65).
INTAKE_EMAIL_MAX_MIME_DEPTH = env.int("INTAKE_EMAIL_MAX_MIME_DEPTH", default=20)
INTAKE_EMAIL_MAX_ATTACHMENTS = env.int("INTAKE_EMAIL_MAX_ATTACHMENTS", default=20)
# A reply to a resolved incident reopens it: "never", "keywords" (the reply says it is still broken) or "always".
INTAKE_EMAIL_REOPEN = env("INTAKE_EMAIL_REOPEN", default="keywords")
INTAKE_EMAIL_REOPEN_KEYWORDS = env.list(
    "INTAKE_EMAIL_REOPEN_KEYWORDS",
    default=["still broken", "not fixed", "still not working", "still happening", "not resolved", "reopen"],
)
IMAP_HOST = env("IMAP_HOST", default="")
IMAP_PORT = env.int("IMAP_PORT", default=993)
IMAP_TLS = env.bool("IMAP_TLS", default=True)
IMAP_USER = env("IMAP_USER", default="")
IMAP_PASSWORD = env("IMAP_PASSWORD", default="")
IMAP_FOLDER = env("IMAP_FOLDER", default="INBOX")
IMAP_DONE_FOLDER = env("IMAP_DONE_FOLDER", default="INBOX.Processed")
# Refused messages (and ones that cannot be read at all) are moved here, never retried.
IMAP_REFUSED_FOLDER = env("IMAP_REFUSED_FOLDER", default="INBOX.Refused")
if IMAP_HOST:
    CELERY_BEAT_SCHEDULE["intake-poll-imap"] = {
        "task": "intake.tasks.poll_imap",
        "schedule": timedelta(seconds=env.int("IMAP_POLL_SECONDS", default=60)),
        "options": {"expires": 120},
    }

# REST framework
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "incidents.api.authentication.TokenAuthentication",  # accounts.authentication's, with the roles
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "config.api.CursorPagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "incidents.api.handlers.exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "config.api.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("API_THROTTLE_ANON", default="60/min"),
        "user": env("API_THROTTLE_USER", default="1200/min"),
        # The token endpoint, per client address, on top of django-axes' per-username lockout.
        "login": env("API_THROTTLE_LOGIN", default="20/min"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "IncidentDesk API",
    "DESCRIPTION": "Incidents from report to record: lifecycle actions, timeline, comments, attachments, teams.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # The incident answers as `Incident` or `ReporterIncident` (incidents.api.schema).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "incidents.api.schema.incident_shapes",
    ],
    "ENUM_NAME_OVERRIDES": {
        "IncidentStateEnum": "incidents.models.Incident.State",
        "HoldReasonEnum": "incidents.models.Incident.HoldReason",
        "CancelReasonEnum": "incidents.models.Incident.CancelReason",
        "SlaClockStateEnum": "incidents.selectors.SLA_CLOCK_STATES",
        "ProblemStateEnum": "incidents.models.Problem.State",
        "CaseVersionStatusEnum": "interviews.models.CaseVersion.Status",
        "CaseFindingStatusEnum": "interviews.models.CaseFinding.Status",
        "SessionModeEnum": "interviews.models.Session.Mode",
        "AutoAssignModeEnum": "escalation.models.AutoAssign.Mode",
    },
}

# desk_config export/apply (incidents.deskconfig): (section, export function, apply function), applied in
# this order, so that what a section refers to comes before it.
DESK_CONFIG_SECTIONS = [
    ("domains", "incidents.deskconfig.export_domains", "incidents.deskconfig.apply_domains"),
    (
        "qualifications",
        "incidents.deskconfig.export_qualifications",
        "incidents.deskconfig.apply_qualifications",
    ),
    ("teams", "incidents.deskconfig.export_teams", "incidents.deskconfig.apply_teams"),
    ("categories", "incidents.deskconfig.export_categories", "incidents.deskconfig.apply_categories"),
    ("calendars", "escalation.deskconfig.export_calendars", "escalation.deskconfig.apply_calendars"),
    ("webhooks", "escalation.deskconfig.export_webhooks", "escalation.deskconfig.apply_webhooks"),
    ("schedules", "escalation.deskconfig.export_schedules", "escalation.deskconfig.apply_schedules"),
    (
        "escalation_policies",
        "escalation.deskconfig.export_escalation_policies",
        "escalation.deskconfig.apply_escalation_policies",
    ),
    ("sla_policies", "escalation.deskconfig.export_sla_policies", "escalation.deskconfig.apply_sla_policies"),
    ("interviews", "interviews.deskconfig.export_interviews", "interviews.deskconfig.apply_interviews"),
    ("integrations", "intake.deskconfig.export_integrations", "intake.deskconfig.apply_integrations"),
]

# Content-Security-Policy: nothing from elsewhere, no inline script.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "object-src": ["'none'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
    }
}

# The web console: sign-in pages are Django's auth views with our templates.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "web:home"
LOGOUT_REDIRECT_URL = "login"
# Anonymous reports through the web form, per client address (the cache holds the counter).
WEB_REPORT_RATE = env("WEB_REPORT_RATE", default="5/hour")

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
    },
    # Monitoring routing keys never reach a log line (intake.logs; gunicorn.conf.py for gunicorn's access log).
    "filters": {"redact_routing_keys": {"()": "intake.logs.RedactRoutingKeys"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_routing_keys"],
        },
        # Django's own handler for the development server's access log, with the filter.
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "django.server",
            "filters": ["redact_routing_keys"],
        },
    },
    "loggers": {"django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}
