"""Production: PostgreSQL, Redis, SMTP, HTTPS behind a proxy. Every value from the environment."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import env

DEBUG = False
SECRET_KEY = env("SECRET_KEY")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_SAMESITE = "Lax"
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")

# Throttles, rate limits and sign-in lockouts must be shared by every process: Redis, never in-process.
_cache_url = env("CACHE_URL", default=env("REDIS_URL", default=""))
if not _cache_url.startswith(("redis://", "rediss://", "rediscache://")):
    raise ImproperlyConfigured(
        "Production needs CACHE_URL (or REDIS_URL) pointing at Redis: redis://host:6379/1"
    )
CACHES = {"default": env.cache_url_config(_cache_url)}
AXES_HANDLER = "axes.handlers.cache.AxesCacheHandler"
SESSION_ENGINE = "accounts.sessions.cached_db"  # as base.py with Redis
# The bench's ceiling views are unauthenticated: never served by a production process.
BENCH_CEILING_VIEWS = False
