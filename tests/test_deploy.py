"""The production shape: docker-compose.yml, the Dockerfile, and `manage.py check --deploy`.

No Docker engine is needed: the compose file and the Dockerfile are checked for their structure, and the
production settings are checked in a subprocess exactly as they would be loaded in the container.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ("web", "worker", "beat")
PRODUCTION = "config.settings.production"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def _command(service: dict) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else str(command)


def _environment(service: dict) -> dict[str, str]:
    environment = service.get("environment", {})
    if isinstance(environment, list):
        return dict(item.split("=", 1) for item in environment)
    return {key: str(value) for key, value in environment.items()}


def _healthcheck(service: dict) -> str:
    test = service.get("healthcheck", {}).get("test", "")
    return " ".join(test) if isinstance(test, list) else str(test)


def _named_volumes(service: dict) -> set[str]:
    names = set()
    for volume in service.get("volumes", []):
        source = volume.get("source", "") if isinstance(volume, dict) else volume.split(":", 1)[0]
        if source and not source.startswith((".", "/", "~", "$")):
            names.add(source)
    return names


def _mounts(service: dict) -> set[str]:
    targets = set()
    for volume in service.get("volumes", []):
        targets.add(volume["target"] if isinstance(volume, dict) else volume.split(":")[1])
    return targets


# --- docker-compose.yml ----------------------------------------------------------------------------


def test_compose_has_the_five_services(compose):
    assert set(compose["services"]) >= {"web", "worker", "beat", "postgres", "redis"}


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_run_the_project_image(compose, name):
    services = compose["services"]
    service = services[name]
    build = service.get("build")
    if build is not None:
        context, dockerfile = (
            (build, "Dockerfile")
            if isinstance(build, str)
            else (
                build.get("context", "."),
                build.get("dockerfile", "Dockerfile"),
            )
        )
        assert (ROOT / context / dockerfile).resolve() == (ROOT / "Dockerfile").resolve()
    else:
        # No build of its own: it shares the image another app service builds.
        images = {services[other].get("image") for other in APP_SERVICES if services[other].get("build")}
        assert service.get("image") in images


def test_web_migrates_then_serves_with_gunicorn(compose):
    command = _command(compose["services"]["web"])
    assert "migrate --noinput" in command
    assert "gunicorn" in command
    assert "config.wsgi:application" in command
    assert command.index("migrate") < command.index("gunicorn")
    assert "0.0.0.0:8000" in command
    assert any("8000" in str(port) for port in compose["services"]["web"].get("ports", []))


def test_worker_and_beat_run_celery(compose):
    assert re.search(r"\bcelery -A config worker\b", _command(compose["services"]["worker"]))
    beat = _command(compose["services"]["beat"])
    assert re.search(r"\bcelery -A config beat\b", beat)
    assert "--schedule" in beat


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_use_postgres_redis_and_production_settings(compose, name):
    env = _environment(compose["services"][name])
    assert env["DJANGO_SETTINGS_MODULE"] == PRODUCTION

    database = urlparse(env["DATABASE_URL"])
    assert database.scheme in {"postgres", "postgresql", "psql", "pgsql"}
    assert database.hostname == "postgres"

    broker = urlparse(env["CELERY_BROKER_URL"])
    assert broker.scheme == "redis"
    assert broker.hostname == "redis"

    cache = urlparse(env["CACHE_URL"])
    assert cache.scheme in {"rediscache", "redis"}
    assert cache.hostname == "redis"

    # Secrets come from the environment and are required; no default value is baked in.
    assert env["SECRET_KEY"].startswith("${SECRET_KEY:?")
    assert env["ALLOWED_HOSTS"].startswith("${ALLOWED_HOSTS")
    assert env["SECURE_SSL_REDIRECT"] == "${SECURE_SSL_REDIRECT:-false}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_wait_for_healthy_postgres_and_redis(compose, name):
    depends_on = compose["services"][name]["depends_on"]
    assert isinstance(depends_on, dict), "depends_on needs the long form to carry a condition"
    for dependency in ("postgres", "redis"):
        assert depends_on[dependency]["condition"] == "service_healthy"


def test_backing_services_have_healthchecks(compose):
    services = compose["services"]
    assert services["postgres"]["image"].startswith("postgres:15")
    assert "pg_isready" in _healthcheck(services["postgres"])
    assert services["redis"]["image"].startswith("redis:7")
    assert "redis-cli ping" in _healthcheck(services["redis"])
    assert "--appendonly yes" in _command(services["redis"])
    web = _healthcheck(services["web"])
    assert "urllib" in web
    assert "127.0.0.1:8000" in web


def test_state_lives_in_named_volumes(compose):
    services = compose["services"]
    declared = set(compose.get("volumes") or {})
    used = set().union(*(_named_volumes(service) for service in services.values()))
    assert used <= declared, f"undeclared volumes: {used - declared}"

    assert _named_volumes(services["postgres"])
    assert "/var/lib/postgresql/data" in _mounts(services["postgres"])
    assert _named_volumes(services["redis"])
    assert "/data" in _mounts(services["redis"])
    attachments = _named_volumes(services["web"])
    assert attachments
    assert attachments == _named_volumes(services["worker"]), "web and worker must share the attachments"
    for name in ("web", "worker"):
        assert "/data/attachments" in _mounts(services[name])
        assert _environment(services[name])["ATTACHMENTS_ROOT"] == "/data/attachments"


# --- Dockerfile --------------------------------------------------------------------------------------


def test_dockerfile_builds_the_production_image(dockerfile):
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.MULTILINE)
    assert re.search(r"apt-get install[^\n]*\bgcc\b[^\n]*\blibpq-dev\b", dockerfile)
    assert re.search(r"pip install[^\n]*['\"]?\.\[postgres\]", dockerfile), "installs the postgres extra"
    assert re.search(r"collectstatic --noinput", dockerfile)
    assert f"DJANGO_SETTINGS_MODULE={PRODUCTION}" in dockerfile
    cmd = re.findall(r"^CMD (.+)$", dockerfile, re.MULTILINE)[-1]
    assert "gunicorn" in cmd
    assert "config.wsgi:application" in cmd
    assert "0.0.0.0:8000" in cmd


def test_dockerfile_runs_as_a_non_root_user(dockerfile):
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert users, "no USER instruction: the container would run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    # The USER instruction comes after the last RUN, so the app itself never runs as root.
    last_user = max(m.start() for m in re.finditer(r"^USER\s", dockerfile, re.MULTILINE))
    last_run = max(m.start() for m in re.finditer(r"^RUN\s", dockerfile, re.MULTILINE))
    assert last_user > last_run


def test_dockerignore_keeps_local_state_out_of_the_image():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".venv", "var", ".git", "test-results"} <= ignored
    assert ignored & {"__pycache__", "**/__pycache__"}


# --- production settings -----------------------------------------------------------------------------

# Settings the test controls; anything of these in the caller's environment would change the outcome.
_CONTROLLED = {
    "DJANGO_SETTINGS_MODULE",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "DEBUG",
    "DATABASE_URL",
    "CACHE_URL",
    "CELERY_BROKER_URL",
    "REDIS_URL",
    "CSRF_TRUSTED_ORIGINS",
    "DJANGO_ALLOW_ASYNC_UNSAFE",  # set for the browser tests in this process; never in a deployment
}


def _production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _CONTROLLED and not key.startswith(("SECURE_", "SESSION_", "CSRF_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE=PRODUCTION,
        SECRET_KEY=secrets.token_urlsafe(48),
        ALLOWED_HOSTS="desk.example.org",
        DATABASE_URL=f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
        CACHE_URL="redis://127.0.0.1:6379/0",  # production refuses an in-process cache (never connected here)
    )
    env.update(overrides)
    return env


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_reports_no_issues(tmp_path):
    env = _production_env(tmp_path)
    assert len(env["SECRET_KEY"]) == 64
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "no issues" in output, output


@pytest.mark.parametrize("variable", ["SECRET_KEY", "ALLOWED_HOSTS"])
def test_production_refuses_to_start_without(tmp_path, variable):
    dotenv = ROOT / ".env"
    if dotenv.exists() and re.search(rf"^\s*(export\s+)?{variable}\s*=", dotenv.read_text(), re.MULTILINE):
        pytest.skip(f"{dotenv} sets {variable}; the settings read it from there")
    env = _production_env(tmp_path)
    del env[variable]
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert variable in result.stderr
