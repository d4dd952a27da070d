# syntax=docker/dockerfile:1
# Production image. gunicorn serves the web app by default; docker-compose.yml runs the same image as
# the one-shot migrate (and demo seed), the Celery worker, the sweeper and beat. All configuration comes from
# the environment (config/settings/production.py).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# gcc and libpq-dev: psycopg2 (the `postgres` extra) is built from source against the system libpq.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libpq-dev \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app

WORKDIR /app

# The extras: `postgres` (the driver) and `run` (time-machine, which `seed_demo` and `seed_interviews` replay
# the demo's history with, so that the image can seed the demo). A build without the demo seeds:
#   docker compose build --build-arg EXTRAS=postgres
ARG EXTRAS=postgres,run

# Dependencies first (runtime + the extras, read from pyproject.toml), so that a code change does not
# rebuild psycopg2.
COPY pyproject.toml ./
RUN python -c "import os, tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + [r for e in os.environ['EXTRAS'].split(',') for r in p['optional-dependencies'][e]]))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY . .
# Editable: the code runs from /app, where the settings expect templates/, static/ and var/ (BASE_DIR).
RUN pip install --editable ".[${EXTRAS}]"

ENV DJANGO_SETTINGS_MODULE=config.settings.production \
    ATTACHMENTS_ROOT=/data/attachments \
    WEB_CONCURRENCY=3

# Static files are collected at build time (whitenoise serves them). The key and hosts here are
# throwaway values for this one build step only; they are not kept in the image.
RUN mkdir -p static var/celery-broker /data/attachments \
    && SECRET_KEY=collectstatic-only-build-time-value ALLOWED_HOSTS=localhost \
       python manage.py collectstatic --noinput \
    && chown app:app var var/celery-broker /data/attachments

USER 10001:10001

EXPOSE 8000
# gunicorn takes its worker count from WEB_CONCURRENCY.
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--access-logfile", "-"]
