"""Fake `codex exec --json --sandbox workspace-write [PROMPT | -]`, emitting Codex CLI 0.171's JSONL events.

It answers `--version` and `login status` (logged in when FAKE_CODEX_LOGGED_IN is set, whatever CODEX_API_KEY says,
as the real one). Like the real CLI, `-` (or no prompt) reads the prompt from stdin and an unknown `-x` argument is
refused. FAKE_CODEX picks the scenario: success, offline (never exits, says "waiting for network"), reconnecting
(never exits, only reconnect chatter), failed (turn.failed), error-exit-0 (an `error` event, no turn.completed, exit
0), partial (a failed file change and a declined command in a completed turn).

Threads: each run keeps its prompts in FAKE_SESSIONS/<thread_id>.json. `exec [exec options] resume <id> -`
continues one (`resume` takes no --sandbox of its own, as in 0.171): the same thread.started id, then a file
change of src/followup.txt with the earlier prompts' count and the new prompt's first line; an unknown id fails
as the real CLI does ("no rollout found").
"""

import itertools
import json
import os
import sys
import time


def emit(**event: object) -> None:
    print(json.dumps(event), flush=True)


args = sys.argv[1:]
if args == ["--version"]:
    print("codex-cli 0.171.0")
    sys.exit(0)
if args == ["login", "status"]:
    print("WARNING: proceeding, even though we could not create PATH aliases", file=sys.stderr)
    print("Logged in using ChatGPT" if os.environ.get("FAKE_CODEX_LOGGED_IN") else "Not logged in")
    sys.exit(0 if os.environ.get("FAKE_CODEX_LOGGED_IN") else 1)
if args[:2] != ["exec", "--json"] or "--full-auto" in args:
    print("error: unexpected argument", file=sys.stderr)
    sys.exit(2)
positional = []
rest = iter(args[2:])
for arg in rest:
    if arg == "--sandbox" and positional[:1] == ["resume"]:
        print("error: unexpected argument '--sandbox' found", file=sys.stderr)
        sys.exit(2)
    if arg in ("--sandbox", "--model", "-m"):
        next(rest)
    elif arg.startswith("-") and arg != "-":
        print(f"error: unexpected argument '{arg}' found", file=sys.stderr)
        sys.exit(2)
    else:
        positional.append(arg)
resume = positional[1] if positional[:1] == ["resume"] and len(positional) > 1 else None
prompt = positional[-1] if positional and positional[-1] not in ("-", resume) else sys.stdin.read()
if os.environ.get("FAKE_RECORD"):
    with open(os.environ["FAKE_RECORD"], "w") as record:
        json.dump({"argv": args, "prompt": prompt}, record)
print("Reading additional input from stdin...", file=sys.stderr, flush=True)
scenario = os.environ.get("FAKE_CODEX", "success")
sessions = os.environ.get("FAKE_SESSIONS")
thread, history = "0199a213-81c0-7800-8aa1-bbab2a035a53", []
if resume is not None:
    saved = os.path.join(sessions or "", f"{resume}.json")
    if not sessions or not os.access(saved, os.R_OK):
        print(f"Error: thread/resume: thread/resume failed: no rollout found for thread id {resume} (code -32600)",
              file=sys.stderr)
        print("\nStack backtrace:", *(f"   {n}: <unknown>" for n in range(10)), sep="\n", file=sys.stderr)
        sys.exit(1)
    with open(saved) as earlier:
        history = json.load(earlier)
    thread, scenario = resume, "resumed"
if sessions:
    with open(os.path.join(sessions, f"{thread}.json"), "w") as keep:
        json.dump([*history, prompt], keep)
emit(type="thread.started", thread_id=thread)
emit(type="turn.started")
if scenario == "success":
    emit(
        type="item.started",
        item={"id": "item_0", "type": "command_execution", "command": "ls", "status": "in_progress"},
    )
    emit(
        type="item.completed",
        item={
            "id": "item_1",
            "type": "file_change",
            "changes": [{"path": "src/app.py", "kind": "update"}],
            "status": "completed",
        },
    )
    emit(type="item.completed", item={"id": "item_2", "type": "agent_message", "text": "Updated src/app.py."})
    emit(type="turn.completed", usage={"input_tokens": 1000, "cached_input_tokens": 200, "output_tokens": 50})
elif scenario == "resumed":
    os.makedirs("src", exist_ok=True)
    with open("src/followup.txt", "w") as out:
        out.write(f"after {len(history)} prompt(s): {prompt.splitlines()[0]}\n")
    change = {"id": "item_0", "type": "file_change", "changes": [{"path": "src/followup.txt", "kind": "add"}]}
    emit(type="item.completed", item={**change, "status": "completed"})
    emit(type="item.completed", item={"id": "item_1", "type": "agent_message", "text": f"Followed up in {thread}."})
    emit(type="turn.completed", usage={"input_tokens": 20, "cached_input_tokens": 0, "output_tokens": 5})
elif scenario == "error-exit-0":
    emit(type="error", message="unexpected status 401 Unauthorized: Missing bearer authentication in header")
elif scenario == "partial":
    emit(
        type="item.completed",
        item={
            "id": "item_0",
            "type": "command_execution",
            "command": "rm -rf build",
            "aggregated_output": "",
            "exit_code": None,
            "status": "declined",
        },
    )
    emit(
        type="item.completed",
        item={
            "id": "item_1",
            "type": "file_change",
            "changes": [{"path": os.path.join(os.getcwd(), "src/app.py"), "kind": "update"}],
            "status": "failed",
        },
    )
    emit(
        type="item.completed",
        item={
            "id": "item_2",
            "type": "file_change",
            "changes": [{"path": "README.md", "kind": "update"}],
            "status": "completed",
        },
    )
    emit(type="item.completed", item={"id": "item_3", "type": "agent_message", "text": "Done."})
    emit(type="turn.completed", usage={"input_tokens": 10, "cached_input_tokens": 0, "output_tokens": 5})
elif scenario == "failed":
    emit(type="turn.failed", error={"message": "model refused"})
    sys.exit(1)
else:
    for attempt in range(2, 6):
        emit(type="error", message=f"Reconnecting... {attempt}/5 (stream disconnected before completion)")
    for _ in itertools.count():
        if scenario == "offline":
            emit(
                type="error",
                message="Reconnecting... waiting for network (Connection failed: error sending request)",
            )
        else:
            emit(type="error", message="Reconnecting... 5/5 (stream disconnected before completion)")
        time.sleep(0.05)
