"""How a repository tests itself: the command the test phase runs, in the project's own environment.

Tried in order, the first that fits wins: the configured `[tool.adw.agents] test_command`; a virtualenv of the
repository (`.venv`, `venv`: the worktree's, then the main worktree's); uv, poetry, hatch, tox, nox (where the
tool is installed); a `package.json` test script; `cargo test`; `go test ./...`; a Makefile `test` target. When
nothing fits, one error says what to configure: ADW never falls back to its own interpreter unasked.

Python runs put the worktree's source roots first on PYTHONPATH: the main worktree's virtualenv usually holds the
project editable-installed from the main worktree, and without this the tests would import the main worktree's
code, not the change being tested.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from adw.errors import ConfigError

TestKind = Literal["configured", "venv", "uv", "poetry", "hatch", "tox", "nox", "npm", "cargo", "go", "make"]
_PYTHON_KINDS = ("configured", "venv", "uv", "poetry", "hatch")
_VENV_NAMES = (".venv", "venv")
_NPM_PLACEHOLDER = "no test specified"  # the `test` script `npm init` writes, which always fails
_MAKE_TEST_TARGET = re.compile(r"^test\s*:(?!=)", re.MULTILINE)  # `test:`, not the assignment `test := …`

Which = Callable[[str], str | None]


class TestEnvironment(BaseModel):
    """The test command chosen for a worktree and why."""

    __test__: ClassVar[bool] = False  # not a pytest test class
    model_config = ConfigDict(frozen=True)

    kind: TestKind
    argv: list[str]
    reason: str
    junit: bool  # a pytest run, which takes --junitxml; other runners are judged by their exit code
    env: dict[str, str] = {}
    source_roots: list[str] = []  # relative to the worktree, first on PYTHONPATH

    def describe(self) -> str:
        """One line for the log and the summary: the command and why it was chosen."""
        roots = f"; worktree sources first on PYTHONPATH: {', '.join(self.source_roots)}" if self.source_roots else ""
        return f"tests run with `{' '.join(self.argv)}` ({self.reason}{roots})"


def with_interpreter(argv: list[str]) -> list[str]:
    """`python` at the head of a configured command means the interpreter running ADW."""
    return [sys.executable, *argv[1:]] if argv and argv[0] in ("python", "python3") else list(argv)


def discover_test_environment(
    worktree: Path, main_root: Path, configured: list[str] | None, which: Which = shutil.which
) -> TestEnvironment:
    """The first way to run the tests of `worktree` that fits; ConfigError naming what to set when none does."""
    notes: list[str] = []
    found = _configured(configured) or _venv(worktree, main_root, notes) or _tool(worktree, which, notes)
    if found is None:
        raise ConfigError(
            "found no way to run this repository's tests: no virtualenv (.venv or venv) in the worktree or the main"
            " worktree, no uv, poetry, hatch, tox or nox project, no package.json test script, Cargo.toml, go.mod"
            " or Makefile test target" + "".join(f"; {note}" for note in notes),
            'set the command: test_command = ["python", "-m", "pytest", "-q"] under [tool.adw.agents] in'
            " pyproject.toml or under [agents] in .adw.toml (a leading `python` is the interpreter running ADW)",
        )
    kind, argv, reason, env = found
    if kind not in _PYTHON_KINDS:
        return TestEnvironment(kind=kind, argv=argv, reason=reason, junit=False, env=env)
    roots = source_roots(worktree)
    python_path = [str(worktree / root) if root != "." else str(worktree) for root in roots]
    if inherited := os.environ.get("PYTHONPATH"):
        python_path.append(inherited)
    return TestEnvironment(
        kind=kind,
        argv=argv,
        reason=reason,
        junit=runs_pytest(argv),
        env={**env, "PYTHONPATH": os.pathsep.join(python_path)},
        source_roots=roots,
    )


def runs_pytest(argv: list[str]) -> bool:
    return any(Path(arg).name in ("pytest", "py.test") for arg in argv)


_Found = tuple[TestKind, list[str], str, dict[str, str]]


def _configured(configured: list[str] | None) -> _Found | None:
    if not configured:
        return None
    return "configured", with_interpreter(configured), "[tool.adw.agents] test_command is set", {}


def _venv(worktree: Path, main_root: Path, notes: list[str]) -> _Found | None:
    places = [("the worktree's", worktree)]
    if main_root.resolve() != worktree.resolve():
        places.append(("the main worktree's", main_root))
    for whose, root in places:
        for name in _VENV_NAMES:
            venv = root / name
            python = venv / "bin" / "python"
            if not (venv / "pyvenv.cfg").is_file() or not os.access(python, os.X_OK):
                continue
            if not _has_pytest(venv):
                notes.append(f"{venv} has no pytest (install it there, e.g. {python} -m pip install pytest)")
                continue
            env = {"VIRTUAL_ENV": str(venv), "PATH": os.pathsep.join([str(venv / "bin"), os.environ.get("PATH", "")])}
            return "venv", [str(python), "-m", "pytest", "-q"], f"{whose} virtualenv {venv}", env
    return None


def _has_pytest(venv: Path) -> bool:
    if any(venv.glob("lib/python3*/site-packages/pytest/__init__.py")):
        return True
    # A venv made with --system-site-packages may get pytest from the base interpreter.
    config = (venv / "pyvenv.cfg").read_text(encoding="utf-8", errors="replace")
    return re.search(r"^include-system-site-packages\s*=\s*true\s*$", config, re.MULTILINE | re.IGNORECASE) is not None


def _tool(worktree: Path, which: Which, notes: list[str]) -> _Found | None:
    pyproject = _pyproject(worktree)
    tool = pyproject.get("tool", {})
    candidates: list[tuple[TestKind, bool, str, list[str]]] = [
        ("uv", (worktree / "uv.lock").is_file(), "uv.lock", ["uv", "run", "--frozen", "pytest", "-q"]),
        ("poetry", (worktree / "poetry.lock").is_file() or "poetry" in tool, "a poetry project",
         ["poetry", "run", "pytest", "-q"]),
        ("hatch", (worktree / "hatch.toml").is_file() or "envs" in tool.get("hatch", {}), "hatch environments",
         ["hatch", "test"]),
        ("tox", (worktree / "tox.ini").is_file() or "tox" in tool, "a tox configuration", ["tox"]),
        ("nox", (worktree / "noxfile.py").is_file(), "noxfile.py", ["nox"]),
        ("npm", _npm_test_script(worktree), "package.json's test script", ["npm", "test"]),
        ("cargo", (worktree / "Cargo.toml").is_file(), "Cargo.toml", ["cargo", "test"]),
        ("go", (worktree / "go.mod").is_file(), "go.mod", ["go", "test", "./..."]),
        ("make", _make_test_target(worktree), "the Makefile's test target", ["make", "test"]),
    ]
    for kind, present, evidence, argv in candidates:
        if not present:
            continue
        program = which(argv[0])
        if program is None:
            notes.append(f"{evidence} found but `{argv[0]}` is not installed")
            continue
        return kind, [program, *argv[1:]], f"{evidence} found and `{argv[0]}` is installed", {}
    return None


def _pyproject(root: Path) -> dict[str, Any]:
    try:
        return tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}  # not a Python project, or a broken file that its own tools will report


def _npm_test_script(root: Path) -> bool:
    try:
        package = json.loads((root / "package.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    scripts = package.get("scripts") if isinstance(package, dict) else None
    test = scripts.get("test") if isinstance(scripts, dict) else None
    return isinstance(test, str) and _NPM_PLACEHOLDER not in test


def _make_test_target(root: Path) -> bool:
    for name in ("GNUmakefile", "makefile", "Makefile"):
        try:
            return _MAKE_TEST_TARGET.search((root / name).read_text(encoding="utf-8", errors="replace")) is not None
        except OSError:
            continue
    return False


def source_roots(worktree: Path) -> list[str]:
    """Folders (relative to the worktree) that hold the project's importable code, from its packaging config,
    else `src/`, else the worktree itself (a flat layout)."""
    tool = _pyproject(worktree).get("tool", {})
    setuptools = tool.get("setuptools", {})
    declared: list[str] = []
    packages = setuptools.get("packages")
    if isinstance(packages, dict):
        declared += _strings(packages.get("find", {}).get("where"))
    package_dir = setuptools.get("package-dir")
    if isinstance(package_dir, dict) and isinstance(package_dir.get(""), str):
        declared.append(package_dir[""])
    wheel = tool.get("hatch", {}).get("build", {}).get("targets", {}).get("wheel", {})
    declared += [str(Path(package).parent) for package in _strings(wheel.get("packages"))]
    for entry in tool.get("poetry", {}).get("packages", []):
        if isinstance(entry, dict) and isinstance(entry.get("from"), str):
            declared.append(entry["from"])
    if not declared and (worktree / "src").is_dir():
        declared.append("src")
    roots: list[str] = []
    base = worktree.resolve()
    for root in declared or ["."]:
        folder = (worktree / root).resolve()
        relative = folder.relative_to(base).as_posix() if folder.is_relative_to(base) else None
        if relative is not None and folder.is_dir() and relative not in roots:
            roots.append(relative)
    return roots


def _strings(value: object) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []
