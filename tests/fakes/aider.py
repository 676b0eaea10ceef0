"""Fake `aider --message … --yes-always --no-auto-commits`: plain text with aider's edit and cost lines."""

import os
import sys

args = sys.argv[1:]
if "--message" not in args or "--yes-always" not in args or "--no-auto-commits" not in args:
    print("aider: missing headless flags", file=sys.stderr)
    sys.exit(2)
print("Aider v0.86.0")
print("Main model: test-model with diff edit format")
os.makedirs("src", exist_ok=True)
with open("src/calc.py", "w") as out:
    out.write("def add(a, b):\n    return a + b\n")
print("Applied edit to src/calc.py")
print("Tokens: 3.0k sent, 1.2k cache write, 42 received. Cost: $0.0063 message, $0.0063 session.")
print("Tokens: 2.5k sent, 10 received. Cost: $0.0021 message, $0.0084 session.")
sys.exit(int(os.environ.get("FAKE_AIDER_EXIT", "0")))
