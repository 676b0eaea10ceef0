"""Resource faults (issue #11): 200 MB of agent output is a clear outcome with bounded memory and a capped log.
(A full disk during `worktree create` is in test_worktree_lifecycle.py.)"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

from adw.config import PhaseConfig
from adw.sdlc.engine import agent_factories
from adw.workflow.engine import Engine
from adw.workflow.events import OutputLine
from adw.workflow.models import Task, TaskState
from adw.workflow.store import MAX_STORED_OUTPUT, Store
from tests.fakes import FAST, workflow

LINES = 200_000  # of 1,000 bytes: 200 MB
FLOOD = f"import sys\nline = 'x' * 999 + '\\n'\nfor _ in range({LINES}): sys.stdout.write(line)\nprint('all written')\n"


async def test_200_mb_of_agent_output_keeps_memory_and_the_log_bounded(repo: Path) -> None:
    store = Store.for_common_dir(repo / ".git")
    engine = Engine(store, FAST, agents=agent_factories())
    config = PhaseConfig.model_validate({"agent": "command", "command": [sys.executable, "-c", FLOOD]})
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    done = await engine.run(workflow(repo, [Task(id="build", phase="build", agent="command", config=config)]))
    peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    task = done.task("build")
    assert task.state is TaskState.SUCCEEDED and task.summary == "all written"
    assert peak_after - peak_before < 64 * 1024 * 1024, "memory grew with the output"
    stored = [e for e in store.events(done.id, "build") if isinstance(e, OutputLine)]
    assert sum(len(e.text) + 1 for e in stored) <= MAX_STORED_OUTPUT + 200
    assert stored[-1].text == f"[output past {MAX_STORED_OUTPUT} bytes not stored]"
    store.close()
