"""The production shape: docker-compose.yml, .env.example, the Dockerfile, and `manage.py check --deploy`.

No Docker engine here: the compose file is validated against the Compose Specification's JSON schema
(tests/data/compose-spec.json, from the compose-spec project, Apache-2.0) and, where the client is installed, by
`docker compose config`; it is resolved with .env.example's values as `docker compose` would; every service's
command and health check is shown to exist in the project's environment (the image installs the same package);
and the health checks' own code is run against a live server.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import jsonschema
import pytest
import yaml

from tests.conftest import require_service

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
APP_SERVICES = ("migrate", "web", "worker", "sweeper", "beat")
LONG_RUNNING = ("web", "worker", "sweeper", "beat")
PRODUCTION = "config.settings.production"
# The values a user fills in after `cp .env.example .env`.
FILLED = {"SECRET_KEY": secrets.token_urlsafe(50), "POSTGRES_PASSWORD": "pw-" + secrets.token_hex(12)}

_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable syntax: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, $$."""

    def value(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name", "op", "arg")
        present = name in env
        empty = not env.get(name)
        if op in (":-", "-"):
            return arg if (empty if op == ":-" else not present) else env[name]
        if op in (":?", "?") and (empty if op == ":?" else not present):
            raise ValueError(f"{name}: {arg}")
        return env.get(name, "")

    return _VARIABLE.sub(value, text)


def resolve(node, env: dict[str, str]):
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [resolve(item, env) for item in node]
    if isinstance(node, dict):
        return {key: resolve(value, env) for key, value in node.items()}
    return node


def dotenv(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


@pytest.fixture(scope="module")
def raw() -> dict:
    """docker-compose.yml as written, variables unresolved."""
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def example_env() -> dict[str, str]:
    return dotenv(ROOT / ".env.example")


@pytest.fixture(scope="module")
def compose(raw, example_env) -> dict:
    """docker-compose.yml as `docker compose` runs it with .env made from .env.example."""
    return resolve(raw, {**example_env, **FILLED})


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def _command(service: dict) -> str:
    command = service.get("command", "")
    return shlex.join(command) if isinstance(command, list) else str(command)


def _argv(service: dict) -> list[str]:
    command = service.get("command", "")
    return list(command) if isinstance(command, list) else shlex.split(command)


def _environment(service: dict) -> dict[str, str]:
    environment = service.get("environment", {})
    if isinstance(environment, list):
        return dict(item.split("=", 1) for item in environment)
    return {key: str(value) for key, value in environment.items()}


def _healthcheck(service: dict) -> list[str]:
    test = service.get("healthcheck", {}).get("test", [])
    return shlex.split(test) if isinstance(test, str) else list(test)


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


# --- docker-compose.yml: valid, and the services it must have ---------------------------------------------


def test_compose_file_is_valid_against_the_compose_specification(compose):
    schema = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text())
    jsonschema.Draft201909Validator(schema).validate(compose)


def test_docker_compose_config_accepts_it_where_the_client_is_installed(tmp_path):
    """`docker compose config` needs no daemon, only the client (Compose v2's plugin, or Debian's
    docker-compose); without one this skips on a laptop and fails in CI (REQUIRE_SERVICES=1)."""
    client = (
        ["docker", "compose"]
        if shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode == 0
        else ["docker-compose"]
        if shutil.which("docker-compose")
        else None
    )
    require_service(
        "docker compose", client is not None, "apt-get install -y docker-compose (no daemon needed)"
    )
    assert client is not None
    (tmp_path / ".env").write_text(
        (ROOT / ".env.example").read_text() + "".join(f"{key}={value}\n" for key, value in FILLED.items())
    )
    shutil.copy(ROOT / "docker-compose.yml", tmp_path)
    result = subprocess.run(
        [
            *client,
            "--project-directory",
            str(tmp_path),
            "-f",
            str(tmp_path / "docker-compose.yml"),
            "config",
            "-q",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={k: v for k, v in os.environ.items() if k not in {*FILLED, "DATABASE_URL", "SECRET_KEY"}},
    )
    assert result.returncode == 0, result.stderr


def test_compose_has_every_service(compose):
    assert set(compose["services"]) >= {
        *APP_SERVICES,
        "proxy",
        "mailpit",
        "postgres",
        "redis",
    }


def test_every_service_has_a_health_check(compose):
    for name, service in compose["services"].items():
        assert _healthcheck(service)[:1] in (["CMD"], ["CMD-SHELL"]), name


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_run_the_project_image(compose, name):
    services = compose["services"]
    service = services[name]
    build = service.get("build")
    if build is not None:
        context, dockerfile = (
            (build, "Dockerfile")
            if isinstance(build, str)
            else (build.get("context", "."), build.get("dockerfile", "Dockerfile"))
        )
        assert (ROOT / context / dockerfile).resolve() == (ROOT / "Dockerfile").resolve()
    else:
        images = {services[other].get("image") for other in APP_SERVICES if services[other].get("build")}
        assert service.get("image") in images


def test_migrate_runs_once_and_everything_else_waits_for_it(compose):
    services = compose["services"]
    migrate = services["migrate"]
    assert migrate["restart"] == "no"
    command = _command(migrate)
    assert "python manage.py migrate --noinput" in command
    assert "seed_demo" in command
    assert "seed_interviews" in command
    assert "SEED_DEMO" in command  # only when asked
    for name in LONG_RUNNING:
        depends_on = services[name]["depends_on"]
        assert depends_on["migrate"]["condition"] == "service_completed_successfully", name
        assert "migrate" not in _command(services[name]), f"{name} must not migrate on its own"


def test_web_serves_with_gunicorn_behind_the_proxy_only(compose):
    web = compose["services"]["web"]
    argv = _argv(web)
    assert argv[0] == "gunicorn"
    assert "config.wsgi:application" in argv
    assert "0.0.0.0:8000" in argv
    assert not web.get("ports"), "web is reached through the TLS proxy, never over plain HTTP"


def test_workers_and_beat_run_celery_under_their_own_names(compose):
    services = compose["services"]
    for name, queue in (("worker", "urgent,celery"), ("sweeper", "sweep")):
        argv = _argv(services[name])
        assert argv[:4] == ["celery", "-A", "config", "worker"]
        assert argv[argv.index("--queues") + 1] == queue
        node = argv[argv.index("--hostname") + 1]
        assert node == f"{name}@%h"
        # The health check pings exactly this worker.
        assert f"--destination {name}@$HOSTNAME" in " ".join(_healthcheck(services[name]))
    beat = _argv(services["beat"])
    assert beat[:4] == ["celery", "-A", "config", "beat"]
    assert "--schedule" in beat


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_use_postgres_redis_mail_and_production_settings(compose, name):
    env = _environment(compose["services"][name])
    assert env["DJANGO_SETTINGS_MODULE"] == PRODUCTION
    assert env["SECRET_KEY"] == FILLED["SECRET_KEY"]

    database = urlparse(env["DATABASE_URL"])
    assert database.scheme == "postgres"
    assert database.hostname == "postgres"
    assert database.password == FILLED["POSTGRES_PASSWORD"]
    postgres = _environment(compose["services"]["postgres"])
    assert database.username == postgres["POSTGRES_USER"]
    assert database.path == "/" + postgres["POSTGRES_DB"]
    assert postgres["POSTGRES_PASSWORD"] == FILLED["POSTGRES_PASSWORD"]

    assert urlparse(env["CELERY_BROKER_URL"]).hostname == "redis"
    assert urlparse(env["CACHE_URL"]).hostname == "redis"
    # Mail goes to the stack's Mailpit unless .env names a real server.
    assert env["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (env["EMAIL_HOST"], env["EMAIL_PORT"]) == ("mailpit", "1025")
    assert env["SECURE_SSL_REDIRECT"] == "true"
    assert env["ALLOWED_HOSTS"] == "localhost"
    assert env["SITE_URL"].startswith("https://")


def test_secrets_come_from_env_and_nothing_is_hard_coded(raw, example_env):
    app = raw["x-app"]["environment"]
    assert app["SECRET_KEY"].startswith("${SECRET_KEY:?")
    assert "${POSTGRES_PASSWORD:?" in app["DATABASE_URL"]
    assert "${POSTGRES_HOST:-postgres}" in app["DATABASE_URL"]
    assert raw["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    text = (ROOT / "docker-compose.yml").read_text()
    assert not re.search(r"(?i)(password|secret_key)\s*[:=]\s*[\"']?(?!\$\{)[A-Za-z0-9]", text)
    # .env.example names every required variable and gives none of the secrets a value.
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    assert required == {"SECRET_KEY", "POSTGRES_PASSWORD"}
    for name in required:
        assert example_env[name] == "", f"{name} must be set by the user, not copied from the example"
    with pytest.raises(ValueError, match="SECRET_KEY"):
        resolve(raw, example_env)  # as printed, `docker compose up` refuses to start without a key


def test_the_default_profile_catches_mail_and_terminates_tls(compose):
    services = compose["services"]
    assert "profiles" not in services["mailpit"]
    assert services["mailpit"]["image"].startswith("axllent/mailpit:")
    assert "/mailpit readyz" in " ".join(_healthcheck(services["mailpit"]))
    proxy = services["proxy"]
    assert "profiles" not in proxy
    assert proxy["image"].startswith("caddy:2")
    argv = _argv(proxy)
    assert argv[:2] == ["caddy", "reverse-proxy"]
    assert argv[argv.index("--from") + 1] == "https://localhost"
    assert argv[argv.index("--to") + 1] == "http://web:8000"
    assert "--internal-certs" in argv
    assert "--change-host-header" not in argv  # the Host header reaches Django's ALLOWED_HOSTS as sent
    assert any(str(port).endswith(":443") for port in proxy["ports"])
    assert "https://localhost/health/" in _healthcheck(proxy)


def test_backing_services_have_healthchecks(compose):
    services = compose["services"]
    assert services["postgres"]["image"].startswith("postgres:15")
    assert "pg_isready" in " ".join(_healthcheck(services["postgres"]))
    assert services["redis"]["image"].startswith("redis:7")
    assert "redis-cli ping" in " ".join(_healthcheck(services["redis"]))
    assert "--appendonly yes" in _command(services["redis"])


def test_state_lives_in_named_volumes(compose):
    services = compose["services"]
    declared = set(compose.get("volumes") or {})
    used = set().union(*(_named_volumes(service) for service in services.values()))
    assert used <= declared, f"undeclared volumes: {used - declared}"

    assert "/var/lib/postgresql/data" in _mounts(services["postgres"])
    assert "/data" in _mounts(services["redis"])
    assert "/data" in _mounts(services["proxy"])  # Caddy's CA and certificates survive a restart
    attachments = _named_volumes(services["web"])
    assert attachments
    assert attachments == _named_volumes(services["worker"]), "web and worker must share the attachments"
    for name in ("web", "worker"):
        assert "/data/attachments" in _mounts(services[name])
        assert _environment(services[name])["ATTACHMENTS_ROOT"] == "/data/attachments"


# --- every command exists in the image's environment -----------------------------------------------------


def _app_env(compose: dict, tmp_path: Path) -> dict[str, str]:
    """The web service's environment, run here: SQLite instead of the stack's PostgreSQL, no broker."""
    env = {k: v for k, v in os.environ.items() if k not in _CONTROLLED}
    env.update(_environment(compose["services"]["web"]))
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'commands.sqlite3'}",
        CELERY_BROKER_URL="memory://",
        CACHE_URL="redis://127.0.0.1:6379/0",  # production refuses an in-process cache (never connected here)
        ATTACHMENTS_ROOT=str(tmp_path / "attachments"),
        PATH=f"{BIN}:{os.environ['PATH']}",
    )
    return env


def _shell_commands(script: str) -> list[list[str]]:
    """The simple commands of a `sh -c` script (split on && || ; and if/then/fi)."""
    commands = []
    for part in re.split(r"&&|\|\||;", script):
        words = shlex.split(part)
        while words and words[0] in {"if", "then", "fi", "else", "exec"}:
            words = words[1:]
        if words and words[0] != "[":
            commands.append(words)
    return commands


def _argvs(service: dict) -> list[list[str]]:
    argv = _argv(service)
    if argv[:2] == ["sh", "-c"]:
        return _shell_commands(argv[2])
    return [argv]


def test_every_app_command_and_health_check_exists_in_the_image_environment(compose, tmp_path):
    from django.core.management import get_commands

    env = _app_env(compose, tmp_path)
    management = set(get_commands())
    celery_subcommands: set[str] = set()
    checked = []
    for name in APP_SERVICES:
        service = compose["services"][name]
        health = _healthcheck(service)
        argvs = _argvs(service)
        argvs += [shlex.split(health[1])] if health[0] == "CMD-SHELL" else [health[1:]]
        for argv in argvs:
            program = argv[0]
            assert (BIN / program).exists() or shutil.which(program, path=env["PATH"]), f"{name}: {program}"
            if program == "python" and argv[1] == "manage.py":
                assert argv[2] in management, f"{name}: manage.py {argv[2]}"
            elif program == "python" and argv[1] == "-c":
                compile(argv[2], f"{name} health check", "exec")
            elif program == "celery":
                assert argv[1:3] == ["-A", "config"]
                celery_subcommands.add(argv[3])
            elif program == "gunicorn":
                target = next(arg for arg in argv[1:] if ":" in arg and not arg[0].isdigit())
                module, attribute = target.split(":")
                code = f"import {module}; assert callable({module}.{attribute})"
                subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=120)
            else:
                pytest.fail(f"{name}: no check for {argv}")
            checked.append((name, program))
    assert {"worker", "beat", "inspect"} <= celery_subcommands
    for subcommand in sorted(celery_subcommands):
        # `celery -A config SUBCOMMAND --help` loads the app with the production settings, then the subcommand.
        result = subprocess.run(
            [str(BIN / "celery"), "-A", "config", subcommand, "--help"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
    if "ping" not in " ".join(compose["services"]["worker"]["healthcheck"]["test"]):
        pytest.fail("worker health check is not `celery inspect ping`")
    assert len(checked) >= 2 * len(APP_SERVICES)


def test_the_image_can_seed_the_demo(dockerfile):
    extras = re.search(r"^ARG EXTRAS=(\S+)", dockerfile, re.MULTILINE)
    assert extras
    assert {"postgres", "run"} <= set(extras.group(1).split(","))  # `run`: time-machine for the demo seeds
    assert re.search(r'pip install --editable "\.\[\$\{EXTRAS\}\]"', dockerfile)


# --- the health checks answer in the test stack ----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", ["web", "beat"])
def test_health_checks_pass_against_a_live_server(compose, live_server, tmp_path, name):
    """Run the service's own health-check code against the live server (its address swapped in)."""
    from escalation.engine import sweep

    sweep()  # the scheduler's heartbeat: /health/ is 503 until the sweep has run
    health = _healthcheck(compose["services"][name])
    assert health[:3] == ["CMD", "python", "-c"]
    code = health[3]
    url = re.search(r"http://[^/']+/health/", code)
    assert url, code
    here = code.replace(url.group(0), f"{live_server.url}/health/")
    env = {**_app_env(compose, tmp_path), "ALLOWED_HOSTS": "localhost"}
    result = subprocess.run(
        [sys.executable, "-c", here], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    # ... and fails when the desk is unhealthy (no sweep for longer than the limit).
    from escalation.models import EngineHeartbeat

    EngineHeartbeat.objects.all().delete()
    result = subprocess.run(
        [sys.executable, "-c", here], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0


# --- Dockerfile --------------------------------------------------------------------------------------


def test_dockerfile_builds_the_production_image(dockerfile):
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.MULTILINE)
    assert re.search(r"apt-get install[^\n]*\bgcc\b[^\n]*\blibpq-dev\b", dockerfile)
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
    last_user = max(m.start() for m in re.finditer(r"^USER\s", dockerfile, re.MULTILINE))
    last_run = max(m.start() for m in re.finditer(r"^RUN\s", dockerfile, re.MULTILINE))
    assert last_user > last_run


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_image():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".venv", "var", ".git", "test-results", ".env"} <= ignored
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
