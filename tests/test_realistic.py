"""The realistic fixture project is what it claims to be, so that the tests built on it prove something."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

from tests.conftest import run_git
from tests.realistic import DEPENDENCY, FAILING_TEST, LINT_FINDING, PACKAGE, PASSING_TEST, RealisticProject


def test_its_venv_has_a_dependency_adw_lacks_and_imports_the_main_worktree(
    realistic_project: RealisticProject,
) -> None:
    assert importlib.util.find_spec(DEPENDENCY) is None
    probe = f"import {DEPENDENCY}, {PACKAGE}; print({PACKAGE}.__file__)"
    out = subprocess.run([str(realistic_project.python), "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(realistic_project.root / "src" / PACKAGE / "__init__.py")
    assert run_git(realistic_project.root, "status", "--porcelain") == ""  # .venv is ignored


def test_it_has_one_failing_and_one_passing_test(realistic_project: RealisticProject) -> None:
    out = subprocess.run(
        [str(realistic_project.python), "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider"],
        cwd=realistic_project.root, capture_output=True, text=True,
    )
    assert out.returncode == 1
    assert f"FAILED {FAILING_TEST}" in out.stdout and f"PASSED {PASSING_TEST}" in out.stdout


def test_ruff_finds_the_pre_existing_finding_and_would_fix_it(realistic_project: RealisticProject) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-fix", "--no-cache", "--output-format", "json", "."],
        cwd=realistic_project.root, capture_output=True, text=True,
    )
    found = [(item["filename"], item["location"]["row"], item["code"], item["fix"] is not None)
             for item in json.loads(out.stdout)]
    path, line, code = LINT_FINDING
    assert found == [(str(realistic_project.root / path), line, code, True)]
    assert "fix = true" in (realistic_project.root / "pyproject.toml").read_text()
