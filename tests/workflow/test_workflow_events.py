"""Questions an agent asks through its task's events (`TaskEvents.ask_permission`)."""

from __future__ import annotations

import asyncio
import time

import pytest

from adw.workflow.events import EventBus, PermissionAnswered, PermissionAsked, TaskEvents


async def test_an_open_question_counts_as_activity_until_it_is_answered() -> None:
    """Waiting for a person is not an agent gone silent: the inactivity timeout must not stop the task."""
    bus = EventBus()
    events = TaskEvents(bus, "wf", "build")
    async with bus.subscribe(types=[PermissionAsked, PermissionAnswered]) as seen:
        asking = asyncio.create_task(events.ask_permission("Edit a.txt", "edit", ["/w/a.txt"], timeout=30))
        question = await anext(seen)
        assert isinstance(question, PermissionAsked)
        await asyncio.sleep(0.3)
        assert time.monotonic() - events.last_activity < 0.1
        assert bus.answer(question.request_id, "allow_once", "editor")
        assert await asking == ("allow_once", "editor")
        ended = await anext(seen)
    assert isinstance(ended, PermissionAnswered)
    assert (ended.request_id, ended.choice, ended.by) == (question.request_id, "allow_once", "editor")
    await asyncio.sleep(0.3)
    assert time.monotonic() - events.last_activity >= 0.3  # silence counts again once it is answered


async def test_a_question_whose_turn_ends_is_dropped_and_cannot_be_answered() -> None:
    bus = EventBus()
    events = TaskEvents(bus, "wf", "build")
    async with bus.subscribe(types=[PermissionAsked, PermissionAnswered]) as seen:
        asking = asyncio.create_task(events.ask_permission("Run make", "execute", [], timeout=30))
        question = await anext(seen)
        asking.cancel()
        ended = await anext(seen)
    assert isinstance(question, PermissionAsked) and isinstance(ended, PermissionAnswered)
    assert (ended.choice, ended.by) == (None, "cancelled")
    assert not bus.answer(question.request_id, "allow_once", "editor")


async def test_an_answer_given_as_the_time_runs_out_is_the_one_the_agent_gets() -> None:
    """`answer()` said yes to its giver: the agent must not be denied by the timeout all the same. The loop is
    kept busy past the deadline, so the answer and the timeout's expiry come in one turn, the answer first."""
    bus = EventBus()
    events = TaskEvents(bus, "wf", "build")
    loop = asyncio.get_running_loop()
    given: list[bool] = []
    async with bus.subscribe(types=[PermissionAsked, PermissionAnswered]) as seen:
        asking = asyncio.create_task(events.ask_permission("Edit a.txt", "edit", ["/w/a.txt"], timeout=0.5))
        question = await anext(seen)
        assert isinstance(question, PermissionAsked)
        now = loop.time()
        loop.call_at(now + 0.1, time.sleep, 0.7)  # a busy loop: the deadline passes meanwhile
        loop.call_at(now + 0.2, lambda: given.append(bus.answer(question.request_id, "allow_once", "the editor")))
        got = await asking
        ended = await anext(seen)
    assert given == [True]
    assert got == ("allow_once", "the editor")
    assert isinstance(ended, PermissionAnswered) and (ended.choice, ended.by) == ("allow_once", "the editor")


async def test_two_editors_answering_one_question_the_second_is_told_it_is_too_late() -> None:
    bus = EventBus()
    events = TaskEvents(bus, "wf", "build")
    async with bus.subscribe(types=[PermissionAsked]) as seen:
        asking = asyncio.create_task(events.ask_permission("Run make", "execute", [], timeout=30))
        question = await anext(seen)
    assert isinstance(question, PermissionAsked)
    assert bus.answer(question.request_id, "deny", "editor one")
    assert not bus.answer(question.request_id, "allow_always", "editor two")
    assert await asking == ("deny", "editor one")


async def test_a_turn_that_ends_as_the_question_is_answered_reports_it_dropped() -> None:
    bus = EventBus()
    events = TaskEvents(bus, "wf", "build")
    async with bus.subscribe(types=[PermissionAsked, PermissionAnswered]) as seen:
        asking = asyncio.create_task(events.ask_permission("Run make", "execute", [], timeout=30))
        question = await anext(seen)
        assert isinstance(question, PermissionAsked)
        assert bus.answer(question.request_id, "allow_once", "editor")
        asking.cancel()  # in the same turn: the agent never gets the answer
        ended = await anext(seen)
    with pytest.raises(asyncio.CancelledError):
        await asking
    assert isinstance(ended, PermissionAnswered) and (ended.choice, ended.by) == (None, "cancelled")
