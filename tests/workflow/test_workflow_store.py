"""The SQLite store and the event bus: round trips, output budget, cross-process requests, backlog."""

from __future__ import annotations

from pathlib import Path

from adw.workflow.events import EventBus, OutputLine, TaskFinished
from adw.workflow.models import Attempt, Finding, TaskState
from adw.workflow.store import MAX_STORED_OUTPUT, Store
from tests.fakes import command_task, workflow


def test_a_workflow_round_trips_with_tasks_attempts_and_findings(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    wf = workflow(tmp_path, [command_task("a", ["true"]), command_task("b", ["true"], ["a"])], name="round")
    wf.tasks[0].attempts.append(Attempt(number=1, state=TaskState.FAILED, retryable=True))
    wf.tasks[0].findings.append(Finding(path="x.py", line=3, message="bad", source="test"))
    store.save(wf)
    wf.tasks[1].state = TaskState.RUNNING
    store.save(wf, wf.tasks[1])
    loaded = Store(tmp_path / "state.db").load("round")  # a unique prefix of the id
    assert loaded is not None
    assert loaded.model_dump(exclude={"usage"}) == wf.model_dump(exclude={"usage"})
    assert store.load("nope") is None


def test_stored_output_is_capped_per_task_but_state_events_are_kept(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    line = "x" * 1000
    for _ in range(2 * MAX_STORED_OUTPUT // 1000):
        store.record_event(OutputLine(workflow_id="w", task_id="t", text=line))
    store.record_event(TaskFinished(workflow_id="w", task_id="t", state=TaskState.SUCCEEDED))
    store.flush()
    events = store.events("w", "t")
    assert sum(len(e.text) for e in events if isinstance(e, OutputLine)) <= MAX_STORED_OUTPUT + 1000
    assert isinstance(events[-2], OutputLine) and events[-2].text.startswith("[output past")
    assert isinstance(events[-1], TaskFinished)


def test_cancel_requests_pass_between_processes_once(tmp_path: Path) -> None:
    writer, reader = Store(tmp_path / "state.db"), Store(tmp_path / "state.db")
    writer.request_cancel("w1", "build")
    writer.request_cancel("w2")
    assert reader.take_cancel_requests(["w1"]) == [("w1", "build")]
    assert reader.take_cancel_requests(["w1", "w2"]) == [("w2", None)]
    assert reader.take_cancel_requests(["w1", "w2"]) == []


async def test_a_lagging_subscriber_loses_output_never_state_changes() -> None:
    bus = EventBus()
    subscription = bus.subscribe(max_backlog=5)
    for index in range(20):
        bus.publish(OutputLine(workflow_id="w", task_id="t", text=str(index)))
    bus.publish(TaskFinished(workflow_id="w", task_id="t", state=TaskState.SUCCEEDED))
    subscription.close()
    received = [event async for event in subscription]
    assert [e.text for e in received if isinstance(e, OutputLine)] == ["0", "1", "2", "3", "4"]
    assert isinstance(received[-1], TaskFinished) and subscription.dropped == 15
