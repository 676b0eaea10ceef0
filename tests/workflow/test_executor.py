"""The executor seam: `local` by default, `ray` on request, and Ray imported at that one seam only."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from adw.config import AdwConfig, load_config
from adw.errors import ConfigError
from adw.workflow.executor import RAY_INSTALL, LocalExecutor, RayMissingError, open_executor
from tests.conftest import MakeRepo
from tests.fakes import FAKES

NO_RAY = FAKES / "no_ray"

ADW = Path(sys.executable).with_name("adw")

# Imports every module of ADW but the ray executor, then says whether Ray came with them.
_IMPORT_ALL = """
import importlib, pkgutil, sys
import adw
for module in pkgutil.walk_packages(adw.__path__, "adw."):
    if module.name not in ("adw.workflow.ray_executor", "adw.__main__"):
        importlib.import_module(module.name)
print("ray" in sys.modules, len([name for name in sys.modules if name.startswith("adw.")]))
"""


def without_ray() -> dict[str, str]:
    """An environment in which `import ray` fails as it does where Ray is not installed."""
    return {**os.environ, "PYTHONPATH": str(NO_RAY)}


def test_local_is_the_default_executor() -> None:
    assert isinstance(open_executor(AdwConfig()), LocalExecutor)


@pytest.mark.slow  # imports every module of ADW in a fresh interpreter; CI runs it again with Ray installed
def test_no_module_of_adw_imports_ray_but_the_ray_executor() -> None:
    done = subprocess.run([sys.executable, "-c", _IMPORT_ALL], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded_ray, adw_modules = done.stdout.split()
    assert loaded_ray == "False"
    assert int(adw_modules) > 100  # the walk reached the whole package


def test_asking_for_ray_without_it_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    monkeypatch.delitem(sys.modules, "adw.workflow.ray_executor", raising=False)
    with pytest.raises(RayMissingError) as raised:
        open_executor(AdwConfig(executor="ray"))
    assert "needs Ray, which is not installed" in raised.value.message
    assert RAY_INSTALL in raised.value.hint
    assert RAY_INSTALL in raised.value.editor_hint


def test_executor_and_address_are_configured_in_tool_adw(make_repo: MakeRepo) -> None:
    repo = make_repo({"pyproject.toml": '[tool.adw]\nexecutor = "ray"\naddress = "ray://head:10001"\n'})
    config = load_config(repo)
    assert (config.executor, config.address) == ("ray", "ray://head:10001")
    bad = make_repo({"pyproject.toml": '[tool.adw]\nexecutor = "dask"\n'}, name="bad")
    with pytest.raises(ConfigError, match="executor"):
        load_config(bad)


@pytest.mark.parametrize("how", ["flag", "config"])
def test_adw_sdlc_with_ray_missing_gives_one_message_and_changes_nothing(make_repo: MakeRepo, how: str) -> None:
    files = {"specs/add.md": "# Add\n"}
    if how == "config":
        files["pyproject.toml"] = '[tool.adw]\nexecutor = "ray"\n'
    repo = make_repo(files)
    flags = ["--executor", "ray", "--address", "head:6379"] if how == "flag" else []
    done = subprocess.run(
        [str(ADW), "-C", str(repo), "sdlc", "specs/add.md", *flags],
        capture_output=True, text=True, timeout=120, env=without_ray(),
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "the ray executor needs Ray, which is not installed" in done.stderr
    assert RAY_INSTALL in done.stderr
    worktrees = subprocess.run(["git", "worktree", "list"], cwd=repo, capture_output=True, text=True, check=True)
    assert len(worktrees.stdout.splitlines()) == 1  # no worktree made, no agent run


def test_an_unknown_executor_flag_is_refused(make_repo: MakeRepo) -> None:
    repo = make_repo({"specs/add.md": "# Add\n"})
    done = subprocess.run(
        [str(ADW), "-C", str(repo), "sdlc", "specs/add.md", "--executor", "dask"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2
    assert "argument --executor: invalid choice: 'dask'" in done.stderr


def test_adw_cluster_status_without_ray_says_how_to_install_it(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(ADW), "-C", str(tmp_path), "cluster", "status", "--address", "ray://head:10001"],
        capture_output=True, text=True, timeout=120, env=without_ray(),
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "the ray executor needs Ray, which is not installed" in done.stderr and RAY_INSTALL in done.stderr


@pytest.mark.parametrize("command", [["resume", "wf-123456"], ["say", "wf-123456", "go on"]])
def test_adw_resume_and_say_take_the_executor_flags_of_adw_sdlc(make_repo: MakeRepo, command: list[str]) -> None:
    repo = make_repo()
    done = subprocess.run(
        [str(ADW), "-C", str(repo), *command, "--executor", "ray", "--address", "head:6379"],
        capture_output=True, text=True, timeout=120, env=without_ray(),
    )
    assert done.returncode != 0 and "unrecognized arguments" not in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert "the ray executor needs Ray, which is not installed" in done.stderr and RAY_INSTALL in done.stderr
