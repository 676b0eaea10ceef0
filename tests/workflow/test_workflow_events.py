"""Questions an agent asks through its task's events (`TaskEvents.ask_permission`)."""

from __future__ import annotations

import asyncio
import time

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
