"""Fake `codex exec --json --sandbox workspace-write PROMPT`, emitting Codex CLI 0.171's JSONL events.

FAKE_CODEX picks the scenario: success, offline (never exits, says "waiting for network"), reconnecting (never
exits, only reconnect chatter), failed (turn.failed).
"""

import itertools
import json
import os
import sys
import time


def emit(**event: object) -> None:
    print(json.dumps(event), flush=True)


args = sys.argv[1:]
if args[:2] != ["exec", "--json"] or "--full-auto" in args:
    print("error: unexpected argument", file=sys.stderr)
    sys.exit(2)
print("Reading additional input from stdin...", file=sys.stderr, flush=True)
scenario = os.environ.get("FAKE_CODEX", "success")
emit(type="thread.started", thread_id="01a22782")
emit(type="turn.started")
if scenario == "success":
    emit(
        type="item.started",
        item={"id": "item_0", "type": "command_execution", "command": "ls", "status": "in_progress"},
    )
    emit(
        type="item.completed",
        item={"id": "item_1", "type": "file_change", "changes": [{"path": "src/app.py", "kind": "update"}]},
    )
    emit(type="item.completed", item={"id": "item_2", "type": "agent_message", "text": "Updated src/app.py."})
    emit(type="turn.completed", usage={"input_tokens": 1000, "cached_input_tokens": 200, "output_tokens": 50})
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
