"""Time from a follow-up to the agent's first update, against the fake CLIs and the scripted ACP agent.

    PYTHONPATH=. .venv/bin/python benchmarks/follow_up.py [--runs 3]   (the fakes live in tests/)

For each agent (claude, codex, aider: the fakes of tests/fakes; acp: the scripted agent continuing its session with
`session/load`, then with `session/resume`), in a throwaway git repository: the phase runs once, then a follow-up
is sent. Measured, median of `--runs`: from `Engine.run` of the phase, and from `prepare_follow_up` of the
follow-up, to the first event the agent itself caused (a line, a tool call, its start-up progress; not the
engine's checkpoint). The follow-up's time includes the checkpoint taken before it, which a phase of the fakes
does not take; the ratio follow-up / phase is what continuing a session costs over starting one.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.fakes import FAKES, FAST, install_fakes

from adw.config import PhaseConfig
from adw.git.runner import git
from adw.sdlc.engine import agent_factories
from adw.workflow.engine import Engine
from adw.workflow.events import BaseEvent, CostReported, FindingReported, OutputLine, Progress, ToolUse
from adw.workflow.models import FollowUp, Task, Workflow
from adw.workflow.store import Store

_IDENTITY = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b"}


def _agent_update(event: BaseEvent) -> bool:
    if isinstance(event, Progress):
        return not event.message.startswith("checkpoint ")
    return isinstance(event, OutputLine | ToolUse | FindingReported | CostReported)


async def _first_update(engine: Engine, workflow: Workflow, started: float) -> float:
    """Run `workflow`; seconds from `started` to the agent's first update."""
    first: float | None = None
    async with engine.subscribe(workflow.id) as events:
        run = asyncio.create_task(engine.run(workflow))
        async for event in events:
            if _agent_update(event):
                first = time.perf_counter() - started
                break
        done = await run
    assert first is not None and done.tasks[0].state.value == "succeeded", done.tasks[0].reason
    return first


def _task(agent: str, bin_dir: Path, sessions: Path, *acp_flags: str) -> Task:
    if agent == "acp":
        argv = [sys.executable, str(FAKES / "acp_agent.py"), "--sessions", str(sessions), *acp_flags]
        fields: dict[str, object] = {"agent": "acp", "command": argv, "prompt": "recall"}
    else:
        env = {"PATH": str(bin_dir), "FAKE_SESSIONS": str(sessions)}
        fields = {"agent": agent, "env": env, "prompt": "first prompt", "model": "test-model"}
    return Task(id="build", phase="build", agent=agent, config=PhaseConfig.model_validate({**fields, "retries": 0}))


async def measure(agent: str, *acp_flags: str) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        repo = root / "repo"
        repo.mkdir()
        (repo / "README.md").write_text("# bench\n")
        for argv in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "init"]):
            await git(*argv, cwd=repo, env=_IDENTITY)
        bin_dir = install_fakes(root / "bin", "claude", "codex", "aider")
        sessions = root / "sessions"
        sessions.mkdir()
        engine = Engine(Store(root / "state.db"), FAST, agents=agent_factories())
        try:
            workflow = Workflow(id="bench", name="bench", repo=str(repo), cwd=str(repo),
                                tasks=[_task(agent, bin_dir, sessions, *acp_flags)])
            phase = await _first_update(engine, workflow, time.perf_counter())
            started = time.perf_counter()
            ready = engine.prepare_follow_up("bench", "build", FollowUp(message="recall the follow-up"))
            follow_up = await _first_update(engine, ready, started)
        finally:
            engine.close()
    return phase, follow_up


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"first update of the agent, median of {args.runs} runs (seconds):")
    print(f"  {'agent':<22} {'phase':>7} {'follow-up':>10} {'ratio':>6}")
    for label, agent, flags in (
        ("claude (fake)", "claude", ()),
        ("codex (fake)", "codex", ()),
        ("aider (fake)", "aider", ()),
        ("acp, session/load", "acp", ()),
        ("acp, session/resume", "acp", ("--resume",)),
    ):
        runs = [await measure(agent, *flags) for _ in range(args.runs)]
        phase = statistics.median(run[0] for run in runs)
        follow_up = statistics.median(run[1] for run in runs)
        print(f"  {label:<22} {phase:7.3f} {follow_up:10.3f} {follow_up / phase:6.2f}")


if __name__ == "__main__":
    asyncio.run(main())
