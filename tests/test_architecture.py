"""The layering of the apps (pyproject.toml [tool.importlinter]), checked by import-linter as `make lint` does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_import_contract_is_kept():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint_imports)], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_incidents_imports_nothing_from_escalation():
    import grimp

    graph = grimp.build_graph("incidents", "escalation")
    chains = graph.find_shortest_chains(importer="incidents", imported="escalation", as_packages=True)
    allowed = {
        ("incidents.management.commands.seed_demo", "escalation.demo")
    }  # being moved out (see contract)
    assert {(c[0], c[-1]) for c in chains} <= allowed
