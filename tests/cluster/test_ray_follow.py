"""The driver's side of a phase's events, without a cluster: the node's last word is sent, not waited for, so a
driver whose phase returned does not wait forever for a last word that its node died before sending. And the
test clusters' own teardown."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import pytest

# The module itself imports Ray: without the extra there is nothing to collect (the other cluster modules import it
# only in their fixtures).
pytest.importorskip("ray", reason="the cluster tests need `pip install '.[ray]'`")

from adw.workflow import ray_executor
from adw.workflow.agent import CancelToken
from adw.workflow.events import BaseEvent, EventBus, TaskEvents
from adw.workflow.executor import RunningPhase
from adw.workflow.models import AgentResult
from adw.workflow.ray_executor import PhaseRecord, Returned, _AgentThread, _follow, _no_cluster, _without_traceback
from tests.cluster.conftest import _start, stop_cluster

pytestmark = pytest.mark.cluster


class _Method:
    def __init__(self, call: Any) -> None:
        self.remote = call


class _RecordWithoutALastWord:
    """A record to which the phase's node never said its last word: a take waits for good."""

    def __init__(self) -> None:
        self.take = _Method(lambda key: asyncio.get_running_loop().create_future())
        self.ended_keys: list[str] = []
        self.ended = _Method(self.ended_keys.append)


class _Handle:
    """A PhaseRecord called as the driver calls the actor: `record.take.remote(key)` runs now, awaited or not."""

    def __init__(self, record: PhaseRecord) -> None:
        self.record = record
        self.called: list[str] = []

    def __getattr__(self, name: str) -> _Method:
        def call(*args: Any) -> asyncio.Future[Any]:
            self.called.append(name)
            return asyncio.ensure_future(getattr(self.record, name)(*args))

        return _Method(call)


def _progress(*messages: str) -> list[BaseEvent]:
    bus, made = EventBus(), []
    bus.add_sink(made.append)
    for message in messages:
        TaskEvents(bus, "workflow", "task").progress(message)
    return made


async def test_a_phase_that_returned_without_its_last_word_ends_after_a_while(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ray_executor, "_LAST_WORD", 0.2)
    returned = Returned(AgentResult(status="succeeded", summary="done on the node"), b"", "head", "state")
    task: asyncio.Future[Returned] = asyncio.get_running_loop().create_future()
    task.set_result(returned)
    events = TaskEvents(EventBus(), "workflow", "task")
    record = _RecordWithoutALastWord()
    async with asyncio.timeout(10):
        followed = await _follow(task, "key", events, CancelToken(), record)  # type: ignore[arg-type]
    assert followed is returned
    assert record.ended_keys == ["key"]  # its node may have died before it could say its last word itself


async def test_a_driver_that_took_the_last_word_leaves_nothing_on_the_record_without_a_call_more() -> None:
    record = PhaseRecord()
    phase = RunningPhase(workflow_id="w", workflow="w", task_id="t", phase="build", agent="a", node_id="n", host="h",
                         since=0.0)
    await record.started("key", phase)
    first, last = _progress("placed", "done")
    await record.push("key", [first], False)
    await record.push("key", [last], True)
    assert await record.running() == []
    returned = Returned(AgentResult(status="succeeded", summary="done on the node"), b"", "head", "state")
    task: asyncio.Future[Returned] = asyncio.get_running_loop().create_future()
    task.set_result(returned)
    bus, relayed = EventBus(), []
    bus.add_sink(relayed.append)
    handle = _Handle(record)
    async with asyncio.timeout(10):
        followed = await _follow(task, "key", TaskEvents(bus, "w", "t"), CancelToken(), handle)  # type: ignore[arg-type]
    assert followed is returned and [event.message for event in relayed] == ["placed", "done"]  # type: ignore[attr-defined]
    assert handle.called == ["take"]  # through Ray Client each call costs a round trip
    assert await record.take("key") == ([], False)  # forgotten: a node starting it late records nothing


def test_stopping_a_test_cluster_leaves_none_of_its_processes(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Its head's Ray Client server included, which names none of the cluster's folders (it was left running)."""
    temp = tmp_path_factory.mktemp("stop")
    cluster = _start(temp, head_agents=1)
    port = cluster.address.rpartition(":")[2]
    stop_cluster(temp)
    left = [argv for argv in (process.info["cmdline"] or [] for process in psutil.process_iter(["cmdline"]))
            if any(str(temp) in arg or (arg.startswith("--address=") and arg.endswith(f":{port}")) for arg in argv)]
    assert left == []


def test_stopping_a_phases_agent_thread_as_its_loop_closes_is_no_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """The thread puts its last event after its loop closed: the task's `finally` may find it alive with a closed
    loop (seen failing a phase that had succeeded, in benchmarks/scale.py)."""
    phase = SimpleNamespace(settings=SimpleNamespace(stop_grace=0.1), workflow=SimpleNamespace(id="w"),
                            task=SimpleNamespace(id="t"))
    runner = _AgentThread(phase, None, {}, Path("."), None)  # type: ignore[arg-type]
    closed = asyncio.new_event_loop()
    closed.close()
    runner._loop, runner._token = closed, CancelToken()
    runner._ready.set()
    monkeypatch.setattr(runner, "is_alive", lambda: True)  # still putting its last event
    monkeypatch.setattr(runner, "join", lambda timeout: None)
    runner.stop()
    assert not runner._token.requested


def test_a_client_server_that_fails_to_start_says_why_in_one_line_without_its_traceback() -> None:
    raised = (
        "Initialization failure from server:\nTraceback (most recent call last):\n"
        '  File "ray/util/client/server/proxier.py", line 765, in Datapath\n'
        "    if not self.proxy_manager.start_specific_server(\n"
        "psutil.ZombieProcess: PID still exists but it's a zombie (pid=2659)\n"
    )
    error = _no_cluster("ray://127.0.0.1:10001", _without_traceback(raised))
    assert error.message == (
        "no Ray cluster at ray://127.0.0.1:10001: Initialization failure from server: "
        "psutil.ZombieProcess: PID still exists but it's a zombie (pid=2659)"
    )
    assert _without_traceback("Could not find any running Ray instance.") == "Could not find any running Ray instance."
