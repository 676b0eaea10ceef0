"""A scripted ACP agent, written with the agent side of the `agent-client-protocol` package (tests only).

The prompt's first word picks the script; the rest of the line is its argument. What the client answered is
written back as agent message lines (`name: answer`), so a test reads the outcome of each request from the
task's output. With `--sessions DIR` it keeps each session's prompts in DIR and advertises `loadSession`
(replaying the earlier prompts and answers as updates), or with `--resume` too, `session/resume` instead; the
`recall` script says what the session heard before; `once DIR` works the first time, then finishes.
`--fail-session` answers `session/new` with "Authentication required" (as codex-acp does without a login); `--root`
dies at `session/new` with claude-code-acp's message for root.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from acp import (
    PROTOCOL_VERSION,
    Agent,
    RequestError,
    plan_entry,
    run_agent,
    start_tool_call,
    update_agent_message_text,
    update_agent_thought_text,
    update_plan,
    update_tool_call,
    update_user_message_text,
)
from acp.interfaces import Client
from acp.schema import (
    AgentCapabilities,
    AuthMethodAgent,
    Implementation,
    InitializeResponse,
    LoadSessionResponse,
    NewSessionResponse,
    PermissionOption,
    PromptResponse,
    ResumeSessionResponse,
    SessionCapabilities,
    SessionResumeCapabilities,
    TextContentBlock,
    ToolCallLocation,
    ToolCallUpdate,
    Usage,
)

SESSION = "fake-session-1"
FENCED = re.compile(r"```\w* path=(\S+)\n(.*?)```", re.S)


def option(name: str) -> str | None:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else None


SESSIONS = option("--sessions")


class ScriptedAgent(Agent):
    def __init__(self) -> None:
        self.client: Client
        self.cancelled = asyncio.Event()
        self.cwd = ""
        self.prompt_text = ""
        self.session = SESSION
        self.history: list[str] = []  # the prompts this session heard before, with --sessions

    def on_connect(self, conn: Client) -> None:
        self.client = conn

    async def initialize(self, protocol_version: int, **kwargs: Any) -> InitializeResponse:
        return InitializeResponse(
            protocol_version=PROTOCOL_VERSION,
            agent_capabilities=AgentCapabilities(
                load_session=bool(SESSIONS) and "--resume" not in sys.argv,
                session_capabilities=SessionCapabilities(
                    resume=SessionResumeCapabilities() if SESSIONS and "--resume" in sys.argv else None
                ),
            ),
            agent_info=Implementation(name="fake-acp", version="1.0"),
            auth_methods=[AuthMethodAgent(id="login", name="Log in", description="Run `fake-acp login`")],
        )

    async def new_session(self, cwd: str, **kwargs: Any) -> NewSessionResponse:
        if "--fail-session" in sys.argv:
            raise RequestError.auth_required()
        if "--root" in sys.argv:
            print("--dangerously-skip-permissions cannot be used with root/sudo privileges", file=sys.stderr)
            raise RequestError(-32603, "Query closed before response received")
        self.cwd = cwd
        if SESSIONS:
            self.session = self._reserve()
        return NewSessionResponse(session_id=self.session)

    def _reserve(self) -> str:
        """The next free id, its file made at once: two agents starting sessions together get one each."""
        number = len(os.listdir(SESSIONS or ""))
        while True:
            number += 1
            try:
                with Path(SESSIONS or "", f"fake-session-{number}.json").open("x") as saved:
                    saved.write("[]")
                return f"fake-session-{number}"
            except FileExistsError:
                continue

    def _reopen(self, session_id: str, cwd: str) -> None:
        path = Path(SESSIONS or "", f"{session_id}.json")
        if not SESSIONS or not path.exists():
            raise RequestError.resource_not_found(str(path))
        self.history = json.loads(path.read_text())
        self.session, self.cwd = session_id, cwd

    async def load_session(self, cwd: str, session_id: str, **kwargs: Any) -> LoadSessionResponse:
        """As the protocol asks: the whole conversation is replayed as updates before the answer."""
        self._reopen(session_id, cwd)
        for earlier in self.history:
            await self.client.session_update(session_id=session_id, update=update_user_message_text(earlier))
            await self.say(f"(replayed) answer to {earlier.splitlines()[0]}\n")
        return LoadSessionResponse()

    async def resume_session(self, session_id: str, cwd: str, **kwargs: Any) -> ResumeSessionResponse:
        self._reopen(session_id, cwd)
        return ResumeSessionResponse()

    async def cancel(self, session_id: str, **kwargs: Any) -> None:
        self.cancelled.set()

    async def say(self, text: str) -> None:
        await self.client.session_update(session_id=self.session, update=update_agent_message_text(text))

    async def prompt(self, prompt: list[Any], session_id: str, **kwargs: Any) -> PromptResponse:
        block = prompt[0]
        text = block.text if isinstance(block, TextContentBlock) else ""
        self.prompt_text = text
        if SESSIONS:
            with open(os.path.join(SESSIONS, f"{self.session}.json"), "w") as saved:
                json.dump([*self.history, text], saved)
        name, _, argument = text.splitlines()[0].partition(" ")
        script = getattr(self, f"script_{name.replace('-', '_')}")
        stop = await script(argument)
        return PromptResponse(
            stop_reason=stop or "end_turn", usage=Usage(total_tokens=150, input_tokens=120, output_tokens=30)
        )

    async def script_stream(self, argument: str) -> None:
        await self.client.session_update(session_id=self.session, update=update_agent_thought_text("weighing it"))
        for chunk in ("Hel", "lo wor", "ld\nsecond ", "line\n", "Done: all good"):
            await self.say(chunk)
        entries = [plan_entry("read", status="completed"), plan_entry("write", status="in_progress")]
        await self.client.session_update(session_id=self.session, update=update_plan(entries))
        await self.say(f"\ncwd: {self.cwd}")

    async def script_implement(self, argument: str) -> None:
        """Write each fenced block of the spec in the prompt that names a `path=`, as an edit tool call."""
        blocks = FENCED.findall(self.prompt_text)
        for number, (path, body) in enumerate(blocks, 1):
            target = os.path.join(self.cwd, path)
            start = start_tool_call(
                f"w{number}", f"Write {path}", kind="edit", locations=[ToolCallLocation(path=target)]
            )
            await self.client.session_update(session_id=self.session, update=start)
            await self.client.write_text_file(session_id=self.session, path=target, content=body)
            await self.client.session_update(
                session_id=self.session, update=update_tool_call(f"w{number}", status="completed")
            )
        await self.say(f"Implemented {len(blocks)} file(s) of the spec")

    async def script_recall(self, argument: str) -> None:
        """What this session heard before this prompt, and this prompt's lines after the first."""
        earlier = " | ".join(prompt.splitlines()[0] for prompt in self.history)
        await self.say(f"session {self.session} heard {len(self.history)} prompt(s) before: {earlier}\n")
        for line in self.prompt_text.splitlines()[1:]:
            await self.say(f"> {line}\n")

    async def script_bench(self, argument: str) -> None:
        for index in range(int(argument)):
            await self.say(f"chunk {index}\n")

    async def script_tools(self, argument: str) -> None:
        edited = os.path.join(self.cwd, "src", "edited.py")
        start = start_tool_call(
            "t1", "Edit src/edited.py", kind="edit", status="pending", locations=[ToolCallLocation(path=edited)]
        )
        await self.client.session_update(session_id=self.session, update=start)
        await self.client.session_update(session_id=self.session, update=update_tool_call("t1", status="in_progress"))
        await self.client.session_update(session_id=self.session, update=update_tool_call("t1", status="completed"))
        broken = start_tool_call("t2", "Run make", kind="execute", status="in_progress")
        await self.client.session_update(session_id=self.session, update=broken)
        await self.client.session_update(session_id=self.session, update=update_tool_call("t2", status="failed"))
        await self.say("tools done")

    async def script_permission(self, argument: str) -> None:
        options = [
            PermissionOption(option_id="yes", name="Allow once", kind="allow_once"),
            PermissionOption(option_id="always", name="Always", kind="allow_always"),
            PermissionOption(option_id="no", name="Reject", kind="reject_once"),
        ]
        target = os.path.join(self.cwd, "a.txt")
        requests = [
            ("p1", "Edit a.txt", "edit", target),
            ("p2", "Run rm -rf /", "execute", None),
            ("p3", "Edit /etc/passwd", "edit", "/etc/passwd"),
        ]
        if argument == "again":  # a second edit inside, after the others
            requests.append(("p4", "Edit b.txt", "edit", os.path.join(self.cwd, "b.txt")))
        for tool_id, title, kind, path in requests:
            call = ToolCallUpdate(
                tool_call_id=tool_id,
                title=title,
                kind=kind,
                locations=[ToolCallLocation(path=path)] if path else None,
            )
            answer = await self.client.request_permission(session_id=self.session, tool_call=call, options=options)
            outcome = answer.outcome
            await self.say(f"{tool_id}: {getattr(outcome, 'option_id', outcome.outcome)}\n")

    async def script_fs(self, argument: str) -> None:
        """Read and write inside, then try every way out; each answer becomes a line of output."""
        inside = os.path.join(self.cwd, "notes", "new.txt")
        await self.client.write_text_file(session_id=self.session, path=inside, content="written by the agent\n")
        read = await self.client.read_text_file(session_id=self.session, path=inside)
        await self.say(f"read-back: {read.content}")
        lines = await self.client.read_text_file(
            session_id=self.session, path=os.path.join(self.cwd, "three.txt"), line=2, limit=1
        )
        await self.say(f"line-2: {lines.content}")
        attempts = [
            ("read", os.path.join(self.cwd, "..", "outside.txt")),
            ("read", "../outside.txt"),
            ("read", argument),
            ("read", os.path.join(self.cwd, "link", "secret.txt")),
            ("read", os.path.join(self.cwd, ".git", "config")),
            ("read", os.path.join(self.cwd, "missing.txt")),
            ("write", os.path.join(self.cwd, "..", "escaped.txt")),
            ("write", argument),
            ("write", os.path.join(self.cwd, "link", "planted.txt")),
            ("write", os.path.join(self.cwd, ".git", "config")),
            ("write", os.path.join(self.cwd, "linkfile")),
        ]
        for operation, path in attempts:
            try:
                if operation == "read":
                    await self.client.read_text_file(session_id=self.session, path=path)
                else:
                    await self.client.write_text_file(session_id=self.session, path=path, content="escaped\n")
                answer = "ok"
            except RequestError as exc:
                answer = f"error {exc.code}"
            await self.say(f"{operation} {path}: {answer}\n")

    async def script_terminal(self, argument: str) -> None:
        code = "import sys; print('from the terminal'); sys.exit(3)"
        made = await self.client.create_terminal(session_id=self.session, command=sys.executable, args=["-c", code])
        exited = await self.client.wait_for_terminal_exit(session_id=self.session, terminal_id=made.terminal_id)
        output = await self.client.terminal_output(session_id=self.session, terminal_id=made.terminal_id)
        await self.client.release_terminal(session_id=self.session, terminal_id=made.terminal_id)
        await self.say(f"exit: {exited.exit_code}\noutput: {output.output.strip()}\n")
        # A long one, killed: its pid is written where the test can check it is gone.
        sleeper = "import os, time; print(os.getpid(), flush=True); time.sleep(600)"
        made = await self.client.create_terminal(session_id=self.session, command=sys.executable, args=["-c", sleeper])
        # ACP has no "output arrived" notification: a client is polled.
        while not (await self.client.terminal_output(session_id=self.session, terminal_id=made.terminal_id)).output:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        pid = (await self.client.terminal_output(session_id=self.session, terminal_id=made.terminal_id)).output.strip()
        await self.client.kill_terminal(session_id=self.session, terminal_id=made.terminal_id)
        killed = await self.client.wait_for_terminal_exit(session_id=self.session, terminal_id=made.terminal_id)
        await self.say(f"sleeper {pid}: {killed.signal}\n")
        try:
            await self.client.create_terminal(session_id=self.session, command="true", cwd="/")
            await self.say("cwd /: ok\n")
        except RequestError as exc:
            await self.say(f"cwd /: error {exc.code}\n")

    async def script_hang(self, argument: str) -> str | None:
        """Start working, then wait: for the cancel (answered `cancelled`), or forever with `deaf`."""
        leftover = "import time; time.sleep(600)"
        made = await self.client.create_terminal(session_id=self.session, command=sys.executable, args=["-c", leftover])
        await self.say(f"working in {made.terminal_id}\n")
        if argument == "deaf":
            await asyncio.sleep(600)
        await self.cancelled.wait()
        await self.say("cancel received\n")
        return "cancelled"

    async def script_once(self, argument: str) -> None:
        """The first time (no `ran` in the folder ARGUMENT): write its pid there, start a terminal and a process
        of its own, then work for ten minutes; after that, finish at once."""
        folder = Path(argument)
        if (folder / "ran").exists():
            await self.say("done\n")
            return
        (folder / "ran").write_text("")
        (folder / "agent.pid").write_text(str(os.getpid()))
        sleeper = "import time; time.sleep(600)"
        await self.client.create_terminal(session_id=self.session, command=sys.executable, args=["-c", sleeper])
        # and a tool process of its own, as an agent CLI runs its tools
        await asyncio.create_subprocess_exec(sys.executable, "-c", sleeper)
        await self.say("working\n")
        await asyncio.sleep(600)

    async def script_crash(self, argument: str) -> None:
        await self.say("about to crash\n")
        print("fatal: the fake agent crashed", file=sys.stderr, flush=True)
        os._exit(3)

    async def script_stop(self, argument: str) -> str:
        await self.say("giving up\n")
        return argument

    async def script_auth(self, argument: str) -> None:
        raise RequestError.auth_required()


if __name__ == "__main__":
    # session/resume is still "unstable" in the SDK: routed only when asked for.
    asyncio.run(run_agent(ScriptedAgent(), use_unstable_protocol="--resume" in sys.argv))
