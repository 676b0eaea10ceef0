"""The `acp` adapter's overhead per `session/update` message.

    .venv/bin/python benchmarks/acp_adapter.py [--messages 1000] [--runs 3]

The scripted ACP agent of the tests (tests/fakes/acp_agent.py) streams N agent message chunks, one line each,
in one turn. Measured, median of `--runs`:
1. the adapter: one `acp` task through the workflow engine (every chunk becomes an output event on the bus);
2. the floor: the same agent driven by a bare `agent-client-protocol` client whose `session_update` does
   nothing (the SDK's framing and parsing only).
Each is run with N messages and with none; the difference divided by N is the cost of one message, so the
agent's start-up (seconds on a loaded machine) cancels out.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from acp import PROTOCOL_VERSION, connect_to_agent, text_block

from adw.config import AdwConfig, AgentsConfig, PhaseConfig
from adw.sdlc.engine import agent_factories
from adw.workflow.engine import Engine
from adw.workflow.models import Task, TaskState, Workflow

FAKE = [sys.executable, str(Path(__file__).resolve().parent.parent / "tests/fakes/acp_agent.py")]


async def through_adapter(messages: int, work: Path) -> float:
    config = PhaseConfig(agent="acp", command=FAKE, prompt=f"bench {messages}", retries=0)
    task = Task(id="build", phase="build", agent="acp", config=config)
    workflow = Workflow(id=f"bench-{messages}", name="bench", repo=str(work), cwd=str(work), tasks=[task])
    engine = Engine(config=AdwConfig(agents=AgentsConfig(stop_grace=0.5)), agents=agent_factories())
    started = time.perf_counter()
    result = await engine.run(workflow)
    elapsed = time.perf_counter() - started
    assert result.task("build").state is TaskState.SUCCEEDED, result.task("build").reason
    return elapsed


class _Quiet:
    async def session_update(self, session_id: str, update: Any, **kwargs: Any) -> None:
        return None


async def through_sdk(messages: int, work: Path) -> float:
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *FAKE, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=work
    )
    assert proc.stdin is not None and proc.stdout is not None
    conn = connect_to_agent(_Quiet(), proc.stdin, proc.stdout)  # type: ignore[arg-type]
    await conn.initialize(protocol_version=PROTOCOL_VERSION)
    session = await conn.new_session(cwd=str(work), mcp_servers=[])
    await conn.prompt(session_id=session.session_id, prompt=[text_block(f"bench {messages}")])
    await conn.close()
    proc.stdin.close()
    await proc.wait()
    return time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for name, measure in (("adapter", through_adapter), ("SDK floor", through_sdk)):
            full = statistics.median([await measure(args.messages, work) for _ in range(args.runs)])
            empty = statistics.median([await measure(0, work) for _ in range(args.runs)])
            per = (full - empty) / args.messages * 1e6
            print(f"{name:9}: {args.messages} messages {full:.2f} s, none {empty:.2f} s -> {per:.0f} us/message")
            if name == "adapter":
                adapter = per
        print(f"adapter / floor: {adapter / per:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
