"""The architecture contracts of pyproject.toml (`[tool.importlinter]`, DESIGN section 5) hold,
and they can fail: the same contracts run against a small tree that breaks each of them.

`lint-imports` runs as a subprocess from the venv, exactly as a developer runs it, so a
broken contract fails this test with the linter's own report.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from hub.providers import registry

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
ROOT_PACKAGES = ("hub", "pipelines", "resources", "sensors", "emulators")


def lint_imports(cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo", "pyproject.toml"], cwd=cwd,
                          capture_output=True, text=True, timeout=120, env=env)


def test_the_contracts_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, f"import-linter contracts broken:\n{result.stdout}\n{result.stderr}"
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("module, source, contract", [
    ("hub/bad.py", "import dagster\n", "hub (the core) imports neither Dagster"),
    ("hub/bad.py", "def later():\n    from emulators.registry import EMULATORS\n", "hub (the core) imports neither Dagster"),
    ("hub/bad.py", "from pipelines import definitions\n", "hub (the core) imports neither Dagster"),
    ("emulators/bad.py", "from hub.inbound import verify\n", "emulators (the providers' stand-ins) import nothing of hub"),
    ("hub/providers/xero/bad.py", "from hub.providers.quickbooks import client\n", "Provider packages do not import each other"),
    ("hub/sync/engine.py", "from hub.sync import pages\n", "No import cycles inside hub.sync"),
    ("hub/auth/bad.py", "from starlette.requests import Request\n", "hub.auth knows no web framework"),
])
def test_a_violation_breaks_the_contract(tmp_path, module, source, contract):
    """Our pyproject.toml, against stand-in packages of the same names with one forbidden
    import (a function-local one counts too): the linter exits 1 and names the contract and
    the import."""
    for package in ROOT_PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    for name in ("registry", "definitions"):
        (tmp_path / "emulators" / f"{name}.py").write_text("")
        (tmp_path / "pipelines" / f"{name}.py").write_text("")
    for package in ("hub/webhooks", "hub/providers", "hub/sync", "hub/auth", "hub/web", "hub/commands", *(f"hub/providers/{name}" for name in registry.names())):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "hub" / "webhooks" / "verify.py").write_text("")
    (tmp_path / "hub" / "providers" / "quickbooks" / "client.py").write_text("")
    (tmp_path / "hub" / "sync" / "pages.py").write_text("from hub.sync import engine\n")  # one half of a loop
    (tmp_path / "hub" / "sync" / "engine.py").write_text("")
    (tmp_path / module).write_text(textwrap.dedent(source))
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    # the stand-ins, not the installed project, are what the linter must find
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}

    result = lint_imports(tmp_path, env)

    assert result.returncode == 1, result.stdout + result.stderr
    broken = [line for line in result.stdout.splitlines() if line.endswith(" BROKEN")]
    assert len(broken) == 1 and broken[0].startswith(contract), result.stdout
    importer = module.removesuffix(".py").replace("/", ".")
    # forbidden and independence contracts name the import; acyclic_siblings names the loop's edge
    shown = ".pages -> .engine" if contract.startswith("No import cycles") else f"{importer} -> "
    assert shown in result.stdout, result.stdout


def test_the_independence_contract_names_every_provider_package():
    """The contract lists provider packages by name (a wildcard would also catch the shared
    modules every provider imports, such as transport): a new provider folder must join it."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    listed = next(c["modules"] for c in config if c["type"] == "independence")
    assert sorted(listed) == sorted(f"hub.providers.{name}" for name in registry.names()), (
        "add the new provider package to the 'Provider packages do not import each other' contract in pyproject.toml")
