"""Shared fixtures: throwaway git repositories with a known identity, independent of the machine's git config."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults import FaultyGit
from tests.realistic import RealisticProject, build_template, copy_project

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


# Per-test time limits (pytest-timeout) of the long sweeps; the default suite's is `timeout` in pyproject.toml.
_TIMEOUTS = {"faults": 900, "soak": 2400}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for marker, seconds in _TIMEOUTS.items():
            if item.get_closest_marker(marker) and not item.get_closest_marker("timeout"):
                item.add_marker(pytest.mark.timeout(seconds))


@pytest.fixture(autouse=True)
def _isolated_git(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    # No background pool fillers racing the tests (tests/test_pool.py switches the pool on where it is tested).
    monkeypatch.setenv("ADW_POOL", "0")


def run_git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env={**os.environ, **GIT_ENV}
    ).stdout


MakeRepo = Callable[..., Path]


def age(top: Path, seconds: float = 60) -> None:
    """Date `top` and everything below it `seconds` back, so that caches checked by modification time (discovery,
    configuration) trust them at once instead of distrusting a file changed in the last two seconds."""
    when = time.time() - seconds
    for path in (top, *top.rglob("*")):
        os.utime(path, (when, when), follow_symlinks=False)


@pytest.fixture
def make_repo(tmp_path: Path) -> MakeRepo:
    """Create a repository with `files` ({relative path: content}) committed on branch main."""

    def factory(files: dict[str, str] | None = None, name: str = "repo") -> Path:
        root = tmp_path / name
        root.mkdir(parents=True)
        run_git(root, "init", "-q", "-b", "main")
        for rel, content in (files or {"README.md": "# demo\n"}).items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
        run_git(root, "add", "-A")
        run_git(root, "commit", "-q", "-m", "initial")
        return root

    return factory


@pytest.fixture
def repo(make_repo: MakeRepo) -> Path:
    return make_repo({"README.md": "# demo\n", "src/app.py": "def main():\n    return 1\n"})


@pytest.fixture
def faulty_git(tmp_path_factory: pytest.TempPathFactory) -> FaultyGit:
    """A `git` first on PATH that counts ADW's calls and can kill ADW at one of them (tests/faults.py)."""
    return FaultyGit(tmp_path_factory.mktemp("faults"))


@pytest.fixture(scope="session")
def realistic_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once per session (its venv takes seconds); use `realistic_project`, which copies it."""
    return build_template(tmp_path_factory.mktemp("realistic"), run_git)


@pytest.fixture
def realistic_project(realistic_template: Path, tmp_path: Path) -> RealisticProject:
    """A fresh copy of the realistic project (tests/realistic.py) for one test: it may change it freely."""
    return copy_project(realistic_template, tmp_path / "shop")
