"""Fake agent CLIs (claude, codex, aider) that emit the documented stream formats, and helpers to run them."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

from adw.config import AdwConfig, AgentsConfig, PhaseConfig
from adw.workflow.models import Task, Workflow

FAKES = Path(__file__).parent
# Short grace periods and fast samples keep the process tests quick.
FAST = AdwConfig(agents=AgentsConfig(stop_grace=0.3, sample_interval=0.05))


def install_fakes(bin_dir: Path, *names: str) -> Path:
    """Put executable fakes named `names` (e.g. "claude") into `bin_dir`, run by this interpreter."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        target = bin_dir / name
        source = (FAKES / f"{name}.py").read_text(encoding="utf-8")
        target.write_text(f"#!{sys.executable}\n{source}", encoding="utf-8")
        target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return bin_dir


def python(code: str) -> list[str]:
    """argv running `code` with this interpreter."""
    return [sys.executable, "-c", code]


def command_task(task_id: str, argv: list[str], deps: list[str] | None = None, **config: object) -> Task:
    return Task(
        id=task_id,
        phase=task_id,
        agent="command",
        deps=deps or [],
        config=PhaseConfig.model_validate({"agent": "command", "command": argv, **config}),
    )


def workflow(cwd: Path, tasks: list[Task], name: str = "wf", **fields: object) -> Workflow:
    return Workflow.model_validate(
        {"id": f"{name}-test", "name": name, "repo": str(cwd), "cwd": str(cwd), "tasks": tasks, **fields}
    )
