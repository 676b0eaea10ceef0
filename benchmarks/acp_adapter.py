"""The `acp` adapter's overhead per `session/update` message.

    .venv/bin/python benchmarks/acp_adapter.py [--messages 1000] [--runs 5]

N `session/update` notifications, made with the SDK's agent-side helpers exactly as the scripted agent of the
tests (tests/fakes/acp_agent.py) sends them — a message chunk of one line, a tool call start and its completion,
in turn — are fed as newline-delimited JSON into a client connection, in process, so that neither an agent's
start-up (seconds on a loaded machine) nor its sending pace is measured. Median of `--runs`:
1. the adapter: ADW's `AcpClient`, reporting to a task's events on the engine's bus (with one subscriber);
2. the floor: the same connection with a client whose `session_update` does nothing (the SDK's framing,
   parsing and validation only).
The ratio adapter / floor is what ADW adds on top of the SDK.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from acp import connect_to_agent, session_notification, start_tool_call, update_agent_message_text, update_tool_call

from adw.agents.acp_agent import AcpAgent, AcpClient
from adw.config import AgentsConfig, PhaseConfig
from adw.workflow.events import EventBus, TaskEvents
from adw.workflow.models import Task, Workflow


def notifications(count: int) -> bytes:
    updates = []
    for index in range(count):
        match index % 3:
            case 0:
                update: Any = update_agent_message_text(f"line {index} of the agent's answer\n")
            case 1:
                update = start_tool_call(f"t{index}", f"Read src/module_{index}.py", kind="read", status="in_progress")
            case _:
                update = update_tool_call(f"t{index - 1}", status="completed")
        params = session_notification("s1", update).model_dump(mode="json", by_alias=True, exclude_none=True)
        updates.append(json.dumps({"jsonrpc": "2.0", "method": "session/update", "params": params}))
    return ("\n".join(updates) + "\n").encode()


class _Counting:
    """Wraps a client's `session_update` to tell when the last notification was handled."""

    def __init__(self, handle: Callable[..., Any], expected: int) -> None:
        self._handle = handle
        self._left = expected
        self.done = asyncio.Event()

    async def session_update(self, session_id: str, update: Any, **kwargs: Any) -> None:
        await self._handle(session_id=session_id, update=update, **kwargs)
        self._left -= 1
        if self._left == 0:
            self.done.set()


async def _nothing(session_id: str, update: Any, **kwargs: Any) -> None:
    return None


async def feed(data: bytes, count: int, handle: Callable[..., Any]) -> float:
    reader = asyncio.StreamReader(limit=2**20)
    loop = asyncio.get_running_loop()
    sink = open("/dev/null", "wb")  # noqa: SIM115 - the transport owns it and closes it
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, sink)
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    client = _Counting(handle, count)
    conn = connect_to_agent(client, writer, reader)  # type: ignore[arg-type]
    started = time.perf_counter()
    reader.feed_data(data)
    reader.feed_eof()
    await client.done.wait()
    elapsed = time.perf_counter() - started
    await conn.close()
    transport.close()
    return elapsed


def adapter(work: Path) -> tuple[AcpClient, Any]:
    bus = EventBus()
    subscription = bus.subscribe()  # a watcher, as the CLI or the editor is
    config = PhaseConfig(agent="acp", command=["agent"])
    task = Task(id="build", phase="build", agent="acp", config=config)
    workflow = Workflow(id="bench", name="bench", repo=str(work), cwd=str(work), tasks=[task])
    agent = AcpAgent(workflow, AgentsConfig())
    return AcpClient(agent, task, work, TaskEvents(bus, "bench", "build")), subscription


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    data = notifications(args.messages)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        floor, ours = [], []
        for _ in range(args.runs):
            floor.append(await feed(data, args.messages, _nothing))
            client, _subscription = adapter(work)
            ours.append(await feed(data, args.messages, client.session_update))
    per_floor = statistics.median(floor) / args.messages * 1e6
    per_ours = statistics.median(ours) / args.messages * 1e6
    print(f"{args.messages} session/update messages, median of {args.runs} runs:")
    print(f"  SDK floor (no-op client): {per_floor:6.1f} us/message")
    print(f"  ADW adapter (AcpClient):  {per_ours:6.1f} us/message")
    print(f"  adapter / floor: {per_ours / per_floor:.2f}; ADW's own share: {per_ours - per_floor:.1f} us/message")


if __name__ == "__main__":
    asyncio.run(main())
