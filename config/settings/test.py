"""Settings for the test suite. DATABASE_URL picks SQLite (default) or PostgreSQL."""

from .base import *  # noqa: F403
from .base import VAR_DIR, env

SECRET_KEY = "test-secret-key-not-for-production"  # noqa: S105
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
STORAGES["attachments"]["OPTIONS"]["location"] = str(  # noqa: F405
    env.path("TEST_ATTACHMENTS_ROOT", default=VAR_DIR / "test-attachments")
)
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {"anon": "1000/min", "user": "100000/min", "login": "1000/min"}  # noqa: F405
# Tests never reach a broker unless they start one: tasks are called directly, mail goes to the outbox.
# The real-worker tests (tests/escalation/test_real_worker.py) start celery worker and beat as child
# processes with TEST_REAL_SERVICES=1: those keep base.py's broker and e-mail settings, taken from their
# CELERY_BROKER_URL, EMAIL_BACKEND, EMAIL_HOST and EMAIL_PORT (their own Redis and SMTP server).
if not env.bool("TEST_REAL_SERVICES", default=False):
    CELERY_BROKER_URL = "memory://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {}
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # The suite's own connections are managed by pytest-django; persistent ones are for the child workers.
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
STATIC_ROOT = VAR_DIR / "test-static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# A second database for the reports router's tests (tests/test_scaleout.py): the same server, a database of
# its own, so a test can tell which one a read went to. Routing to it is off unless a test turns it on with
# REPORTS_DATABASE_ALIAS; pytest-django creates it only for the tests that ask for it.
DATABASES["reports"] = {  # noqa: F405
    **DATABASES["default"],  # noqa: F405
    "NAME": (
        f"{DATABASES['default']['NAME']}_reports"  # noqa: F405
        if DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3"  # noqa: F405
        else str(VAR_DIR / "incidentdesk-reports.sqlite3")
    ),
    "TEST": {},
}
REPORTS_DATABASE_ALIAS = None
