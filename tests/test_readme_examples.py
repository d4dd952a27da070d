"""The README's shell examples, run as printed against a live server with the demo data.

The examples are read from README.md itself (every ```sh block whose curl talks to the demo server at
http://127.0.0.1:8000, directly or through $DESK), so an example that stops working fails the build. They run in one bash session, in
README order (later blocks use what earlier ones set, as a reader's shell would), with `set -euo pipefail` and
curl failing on any HTTP error.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command

from incidents.models import Incident
from tests.conftest import require_service

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SERVER = "http://127.0.0.1:8000"  # where `make run` serves, as the README prints it
FENCE = re.compile(r"^```(?:sh|bash|shell)\n(.*?)^```", re.MULTILINE | re.DOTALL)
# Prepended by the test, not part of the README: stop at the first failing command or HTTP error.
PRELUDE = """set -euo pipefail
curl() { command curl --silent --show-error --fail-with-body --max-time 30 "$@"; }
"""


def live_examples(text: str) -> list[str]:
    """The README's shell blocks that call the demo server: by its address, or by $DESK, which the first of
    them sets to it."""
    return [
        block for block in FENCE.findall(text) if "curl" in block and (SERVER in block or "$DESK" in block)
    ]


def test_the_readme_has_live_examples_in_the_order_a_reader_needs():
    examples = "\n".join(live_examples(README.read_text()))
    assert "/api/v1/auth/token/" in examples
    for first, then in [("/classify/", "/acknowledge/"), ("/api/v1/auth/token/", "/classify/")]:
        assert first in examples
        assert then in examples
        assert examples.index(first) < examples.index(then), f"{first} must come before {then}"
    assert not re.search(r'"version":\s*\d', examples), (
        "a literal version goes stale: use the one the API returned"
    )


@pytest.mark.django_db(transaction=True)
def test_the_readme_examples_work_against_a_live_server(live_server, tmp_path):
    require_service("curl", shutil.which("curl") is not None, "apt-get install -y curl")
    require_service("python3", shutil.which("python3") is not None, "the examples read JSON with python3")
    # The demo users, teams and categories the examples sign in as and file under, with the shortest history
    # seed_demo plays (its weeks of history are tests/demo's subject, not the examples').
    call_command("seed_demo", "--quiet", "--days", "7")
    before = set(Incident.objects.values_list("id", flat=True))

    script = PRELUDE + "\n".join(live_examples(README.read_text())).replace(SERVER, live_server.url)
    (tmp_path / "examples.sh").write_text(script)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "DATABASE_"))}
    result = subprocess.run(
        ["bash", str(tmp_path / "examples.sh")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"the README's examples failed:\n{result.stderr}\n{result.stdout[-3000:]}"

    # What the examples did, seen in the database: the incident they reported was classified and acknowledged.
    (created,) = Incident.objects.exclude(id__in=before).filter(title="VPN drops every ten minutes")
    assert created.state == Incident.State.RESPONDING
    assert created.team is not None
    assert created.assignee is not None
    assert created.assignee.username == "agent"
    assert created.comments.filter(public=True).exists()
