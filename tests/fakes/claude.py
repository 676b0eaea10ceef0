"""Fake `claude -p … --output-format stream-json --verbose`, emitting Claude Code 2.1's documented stream.

It answers `--version` and `auth status` (logged in when ANTHROPIC_API_KEY is set; FAKE_CLAUDE_VERSION sets the
version). Like the real CLI, `-p` takes the prompt from the next argument or else from stdin, and an argument
starting with `-` that is not one of its options is refused. FAKE_CLAUDE picks the scenario: success, not-logged-in,
offline, rate-limit, hang (until SIGINT), api-error-exit-0 (an API failure that still exits 0), denied (a
"successful" run whose edit was denied and whose Bash call failed).

Sessions: each run keeps its prompts in FAKE_SESSIONS/<session_id>.json. `--resume=<id>` continues that session
(same id, as without --fork-session): it writes the earlier prompts' count and the new prompt's first line to
src/followup.txt with an Edit; an unknown id fails as the real CLI does ("No conversation found").
"""

import json
import os
import signal
import sys
import time
import uuid

SESSION = str(uuid.uuid4())


def emit(**event: object) -> None:
    print(json.dumps({**event, "session_id": SESSION, "uuid": str(uuid.uuid4())}), flush=True)


def result(
    text: str,
    *,
    is_error: bool,
    subtype: str = "success",
    cost: float = 0.0,
    status: object = None,
    terminal: str = "completed",
    denials: list[object] | None = None,
) -> None:
    usage = {"input_tokens": 120, "cache_read_input_tokens": 30, "output_tokens": 45} if cost else {}
    emit(
        type="result",
        subtype=subtype,
        is_error=is_error,
        api_error_status=status,
        duration_ms=386,
        num_turns=2 if cost else 1,
        result=text,
        total_cost_usd=cost,
        usage=usage,
        modelUsage={},
        permission_denials=denials or [],
        terminal_reason=terminal,
    )


def synthetic(text: str, error: str) -> None:
    emit(
        type="assistant",
        error=error,
        parent_tool_use_id=None,
        message={"model": "<synthetic>", "role": "assistant", "content": [{"type": "text", "text": text}]},
    )


if sys.argv[1:] == ["--version"]:
    print(f"{os.environ.get('FAKE_CLAUDE_VERSION', '2.1.332')} (Claude Code)")
    sys.exit(0)
if sys.argv[1:] == ["auth", "status"]:  # logged in when a key is set, as the real one reports it
    logged_in = bool(os.environ.get("ANTHROPIC_API_KEY"))
    print(json.dumps({"loggedIn": logged_in, "authMethod": "api_key" if logged_in else "none"}, indent=2))
    sys.exit(0 if logged_in else 1)
OPTIONS = {"-p", "--print", "--verbose"}
VALUED = {"--output-format", "--permission-mode", "--allowedTools", "--disallowedTools", "--model", "--resume"}
args = sys.argv[1:]
prompt = None
resume = None
index = 0
while index < len(args):
    arg = args[index]
    name = arg.split("=", 1)[0]
    if name in VALUED:
        value = arg.split("=", 1)[1] if "=" in arg else args[index + 1]
        resume = value if name == "--resume" else resume
        index += 1 if "=" in arg else 2
        continue
    if arg not in OPTIONS:
        if arg.startswith("-"):
            print(f"error: unknown option '{arg}'", file=sys.stderr)
            sys.exit(1)
        prompt = arg
    index += 1
if "--output-format" in args and "stream-json" in args and "--verbose" not in args:
    print("Error: When using --print, --output-format=stream-json requires --verbose", file=sys.stderr)
    sys.exit(1)
if prompt is None:
    prompt = sys.stdin.read()
if not prompt:
    print("Error: Input must be provided either through stdin or as a prompt argument when using --print")
    sys.exit(1)
if os.environ.get("FAKE_RECORD"):
    with open(os.environ["FAKE_RECORD"], "w") as record:
        json.dump({"argv": args, "prompt": prompt, "max_retries": os.environ.get("CLAUDE_CODE_MAX_RETRIES")}, record)

scenario = os.environ.get("FAKE_CLAUDE", "success")
sessions = os.environ.get("FAKE_SESSIONS")
history: list[str] = []
if resume is not None:
    saved = os.path.join(sessions or "", f"{resume}.json")
    if not sessions or not os.access(saved, os.R_OK):
        print(f"No conversation found with session ID: {resume}", file=sys.stderr)
        sys.exit(1)
    with open(saved) as earlier:
        history = json.load(earlier)
    SESSION = resume
    scenario = "resumed"
if sessions:
    with open(os.path.join(sessions, f"{SESSION}.json"), "w") as keep:
        json.dump([*history, prompt], keep)


def interrupted(signum: int, frame: object) -> None:
    """What Claude Code does on SIGINT: a last user message and a result with the cost so far, exit 0."""
    emit(
        type="user",
        message={"role": "user", "content": [{"type": "text", "text": "[Request interrupted by user]"}]},
    )
    result("Request interrupted", is_error=True, subtype="error_during_execution", cost=0.5)
    sys.exit(0)


signal.signal(signal.SIGINT, interrupted)
emit(
    type="system",
    subtype="init",
    cwd=os.getcwd(),
    tools=["Edit", "Write", "Bash"],
    model="claude-test",
    permissionMode="acceptEdits",
    apiKeySource="none",
    claude_code_version="2.1.197",
)

if scenario == "success":
    target = os.path.join(os.getcwd(), "src", "hello.py")
    emit(
        type="assistant",
        parent_tool_use_id=None,
        message={
            "role": "assistant",
            "content": [
                {"type": "text", "text": "I will add the greeting."},
                {
                    "type": "tool_use",
                    "id": "t1",
                    "name": "Edit",
                    "input": {"file_path": target, "old_string": "", "new_string": "x"},
                },
            ],
        },
    )
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "w") as out:
        out.write("def hello():\n    return 'hi'\n")
    emit(
        type="user",
        message={"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]},
    )
    emit(
        type="assistant",
        parent_tool_use_id=None,
        message={
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "t2",
                    "name": "Bash",
                    "input": {"command": "pytest -q", "description": "run tests"},
                },
            ],
        },
    )
    result("Added hello() in src/hello.py.\nAll tests pass.", is_error=False, cost=0.0123)
elif scenario == "resumed":
    target = os.path.join(os.getcwd(), "src", "followup.txt")
    emit(
        type="assistant",
        parent_tool_use_id=None,
        message={
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "f1", "name": "Write", "input": {"file_path": target}}],
        },
    )
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "w") as out:
        out.write(f"after {len(history)} prompt(s): {prompt.splitlines()[0]}\n")
    emit(
        type="user",
        message={"role": "user", "content": [{"type": "tool_result", "tool_use_id": "f1", "content": "ok"}]},
    )
    result(f"Followed up in session {SESSION}.", is_error=False, cost=0.001)
elif scenario == "not-logged-in":
    synthetic("Not logged in · Please run /login", "authentication_failed")
    result("Not logged in · Please run /login", is_error=True)
    sys.exit(1)
elif scenario == "offline":
    retries = int(os.environ.get("CLAUDE_CODE_MAX_RETRIES", "10"))
    for attempt in range(1, retries + 1):
        emit(
            type="system",
            subtype="api_retry",
            attempt=attempt,
            max_retries=retries,
            retry_delay_ms=50,
            error_status=None,
            error="Unable to connect",
        )
        time.sleep(0.05)
    synthetic("API Error: Unable to connect to API (ConnectionRefused)", "server_error")
    result("API Error: Unable to connect to API (ConnectionRefused)", is_error=True)
    sys.exit(1)
elif scenario == "rate-limit":
    result("API Error: 429 rate limit exceeded", is_error=True, status=429)
    sys.exit(1)
elif scenario == "api-error-exit-0":
    synthetic("API Error: Unable to connect to API (ENOTFOUND)", "server_error")
    result("API Error: Unable to connect to API (ENOTFOUND)", is_error=True, terminal="api_error")
elif scenario == "denied":
    target = os.path.join(os.getcwd(), "src", "hello.py")
    emit(
        type="assistant",
        parent_tool_use_id=None,
        message={
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "t1", "name": "Write", "input": {"file_path": target, "content": "x"}},
                {"type": "tool_use", "id": "t2", "name": "Bash", "input": {"command": "pytest -q"}},
            ],
        },
    )
    emit(
        type="user",
        message={
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "t1",
                    "is_error": True,
                    "content": "Claude requested permissions to write to src/hello.py, but you haven't granted it yet.",
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "t2",
                    "is_error": True,
                    "content": [{"type": "text", "text": "Exit code 127\npytest: command not found"}],
                },
            ],
        },
    )
    denial = {"tool_name": "Write", "tool_use_id": "t1", "tool_input": {"file_path": target, "content": "x"}}
    result("I could not write src/hello.py.", is_error=False, cost=0.002, denials=[denial])
elif scenario == "hang":
    while True:
        time.sleep(0.05)
