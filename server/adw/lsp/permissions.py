"""Agents' permission questions in the editor. Each `PermissionAsked` becomes a `window/showMessageRequest`: VS
Code shows it as a notification with buttons, Neovim and Emacs as a prompt; the button answers the agent. A
request the user closes denies; one the client never answers is denied by the engine when its time is up."""

from __future__ import annotations

from lsprotocol import types

from adw.lsp.server import AdwServer
from adw.workflow.engine import Engine
from adw.workflow.events import PermissionAsked, PermissionChoice, shown

CHOICES: dict[str, PermissionChoice] = {
    "Allow Once": "allow_once",
    "Always for This Task": "allow_always",
    "Deny": "deny",
}
ANSWERED_BY = "the editor"


def question_text(engine: Engine, question: PermissionAsked) -> str:
    workflow = engine.get(question.workflow_id)
    return (f"ADW {workflow.name} · {question.task_id}: the agent asks to {question.described()}. "
            f"Denied in {question.timeout:g} s without an answer.")


async def ask(ls: AdwServer, engine: Engine, question: PermissionAsked) -> None:
    params = types.ShowMessageRequestParams(
        type=types.MessageType.Warning,
        message=question_text(engine, question),
        actions=[types.MessageActionItem(title=title) for title in CHOICES],
    )
    try:
        picked = await ls.window_show_message_request_async(params)
    except Exception as exc:  # a client that cannot ask leaves the question to its timeout
        ls.log(f"ADW: could not show a permission question: {exc}")
        return
    choice = CHOICES.get(picked.title, "deny") if picked is not None else "deny"
    if not engine.answer_permission(question.request_id, choice, ANSWERED_BY):
        ls.window_show_message(types.ShowMessageParams(
            type=types.MessageType.Info,
            message=f"ADW: too late for \"{shown(question.tool)}\": the question had already ended (denied when its "
                    f"{question.timeout:g} s ran out, or its turn ended).",
        ))


def register(server: AdwServer) -> None:
    async def pump(engine: Engine) -> None:
        async with engine.subscribe(types=[PermissionAsked]) as questions:
            async for question in questions:
                if isinstance(question, PermissionAsked):
                    server.spawn(ask(server, engine, question))

    def start(engine: Engine) -> None:
        server.spawn(pump(engine))

    server.engine_listeners.append(start)
