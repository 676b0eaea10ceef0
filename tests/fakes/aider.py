"""Fake `aider --message-file FILE --yes-always --no-auto-commits …`: plain text with aider's edit and cost lines.

Like aider 0.86 it adds `.aider*` to .gitignore unless `--no-gitignore`, leaves a repo-map cache folder in the
working directory, and exits 0 even when its API requests failed. FAKE_AIDER picks the scenario: success,
api-error (an authentication error), retried (a connection error, then an answer).

Like aider, it appends each message to `--chat-history-file` as a `#### ` line; with `--restore-chat-history`
it reads the earlier ones back and writes their count and the new message's first line to src/followup.txt.
"""

import json
import os
import sys

args = sys.argv[1:]
if args == ["--version"]:
    print("aider 0.86.2")
    sys.exit(0)
if "--yes-always" not in args or "--no-auto-commits" not in args:
    print("aider: missing headless flags", file=sys.stderr)
    sys.exit(2)
if "--message-file" in args:
    with open(args[args.index("--message-file") + 1], encoding="utf-8") as message:
        prompt = message.read()
elif "--message" in args:
    prompt = args[args.index("--message") + 1]
else:
    print("aider: no message", file=sys.stderr)
    sys.exit(2)
if os.environ.get("FAKE_RECORD"):
    with open(os.environ["FAKE_RECORD"], "w") as record:
        json.dump({"argv": args, "prompt": prompt}, record)
scenario = os.environ.get("FAKE_AIDER", "success")
chat = args[args.index("--chat-history-file") + 1] if "--chat-history-file" in args else ".aider.chat.history.md"
earlier = []
if "--restore-chat-history" in args and os.access(chat, os.R_OK):
    with open(chat, encoding="utf-8") as history:
        earlier = [line for line in history if line.startswith("#### ")]
    scenario = "restored"
with open(chat, "a", encoding="utf-8") as history:
    history.write("\n# aider chat started\n\n" + "".join(f"#### {line}\n" for line in prompt.splitlines()[:1]))
if "--no-gitignore" not in args:
    with open(".gitignore", "a") as ignore:
        ignore.write(".aider*\n")
os.makedirs(".aider.tags.cache.v4", exist_ok=True)
with open(".aider.tags.cache.v4/cache.db", "w") as cache:
    cache.write("tags")
print("Aider v0.86.2")
print("Main model: test-model with diff edit format")
if scenario == "api-error":
    print()
    print("litellm.AuthenticationError: AuthenticationError: OpenAIException - Incorrect ")
    print("API key provided")
    print("The API provider is not able to authenticate you. Check your API key.")
    print()
    sys.exit(0)
if scenario == "restored":
    os.makedirs("src", exist_ok=True)
    with open("src/followup.txt", "w") as out:
        out.write(f"after {len(earlier)} prompt(s): {prompt.splitlines()[0]}\n")
    print("Applied edit to src/followup.txt")
    print("Tokens: 1.0k sent, 5 received. Cost: $0.0010 message, $0.0010 session.")
    sys.exit(0)
if scenario == "retried":
    print("litellm.APIConnectionError: APIConnectionError: OpenAIException - Connection error.")
    print("Retrying in 0.2 seconds...")
os.makedirs("src", exist_ok=True)
with open("src/calc.py", "w") as out:
    out.write("def add(a, b):\n    return a + b\n")
print("Applied edit to src/calc.py")
print("Tokens: 3.0k sent, 1.2k cache write, 42 received. Cost: $0.0063 message, $0.0063 session.")
print("Tokens: 2.5k sent, 10 received. Cost: $0.0021 message, $0.0084 session.")
sys.exit(int(os.environ.get("FAKE_AIDER_EXIT", "0")))
