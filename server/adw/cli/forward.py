"""The fast path of the command line: hand a quick command to the repository's resident ADW (`adw daemon start`),
which has the core imported already, instead of importing asyncio, pydantic and the core in a new process
(~190 ms, docs/PERFORMANCE.md). This module is imported by every `adw` run, so it imports only the standard
library's lightest modules (no argparse, pathlib or hashlib: ~9 ms of a forwarded command's ~50, guarded by
tests/cli/test_cli_imports.py); with no resident ADW, or anything unusual, the command runs here as always.

What is handed over: the everyday commands that neither prompt nor stream (`FORWARDED`). What is not: anything
else, a run with `GIT_DIR`-style variables the resident ADW does not share, a resident ADW of another version.
"""

from __future__ import annotations

import binascii
import json
import os
import socket
import sys
from collections.abc import Sequence

from adw import __version__

# command → its verbs that are handed over (None: the command has no verbs).
FORWARDED: dict[str, frozenset[str] | None] = {
    "worktree": frozenset({"list", "open", "create"}),
    "checkpoint": None,
    "checkpoints": None,
    "undo": None,
    "redo": None,
    "status": None,
}
# A request carries these variables and every GIT_* and ADW_* one; the resident ADW serves it only when its own
# are the same. Those that move the repository itself keep the command here.
SHARED_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "TZ")
REPOSITORY_VARIABLES = ("GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY")
REPLY_LIMIT = 64 * 1024 * 1024
_WHERE_THINGS_ARE = "whether it ran is unknown: `adw checkpoints` and `adw worktree list` show where things are"


class ResidentStopped(Exception):
    """The resident ADW took the command and went away before answering: whether it ran is unknown."""


def request_environment() -> dict[str, str | None]:
    names = {*SHARED_VARIABLES, *(name for name in os.environ if name.startswith(("GIT_", "ADW_")))}
    return {name: os.environ.get(name) for name in sorted(names)}


def socket_path(common_dir: str | os.PathLike[str]) -> str:
    """Where the resident ADW of a repository listens: short enough for AF_UNIX whatever the repository's path,
    in a folder only this user may enter. The name is two CRC-32s of the path (64 bits; hashlib's import alone
    costs ~3 ms): a collision of two repositories' names only makes one refuse the other's requests, since a
    request names its repository (`common`)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    folder = os.path.join(runtime, "adw") if runtime else f"/tmp/adw-{os.getuid()}"
    key = os.fsencode(common_dir)
    return os.path.join(folder, f"{binascii.crc32(key):08x}{binascii.crc32(key[::-1]):08x}.sock")


def common_dir_of(start: str) -> str | None:
    """The repository's shared git dir, found by reading `.git` files upwards (no git process); None for
    anything but a plain worktree (a bare repository, a `GIT_DIR` set, no repository)."""
    if any(name in os.environ for name in REPOSITORY_VARIABLES):
        return None
    candidate = os.path.realpath(start)
    while True:
        dot_git = os.path.join(candidate, ".git")
        if os.path.isdir(dot_git):
            return dot_git
        if os.path.isfile(dot_git):
            with open(dot_git, encoding="utf-8", errors="replace") as link:
                text = link.read().strip()
            if not text.startswith("gitdir: "):
                return None
            git_dir = os.path.realpath(os.path.join(candidate, text.removeprefix("gitdir: ")))
            common = os.path.join(git_dir, "commondir")
            if not os.path.isfile(common):
                return git_dir
            with open(common, encoding="utf-8", errors="replace") as shared:
                return os.path.realpath(os.path.join(git_dir, shared.read().strip()))
        parent = os.path.dirname(candidate)
        if parent == candidate:
            return None
        candidate = parent


def handed_over(argv: Sequence[str], command: str | None) -> bool:
    """Whether `argv` is a command the resident ADW serves: in `FORWARDED`, no help, no live view."""
    if command not in FORWARDED or any(word in ("-h", "--help", "--watch") for word in argv):
        return False
    verbs = FORWARDED[command]
    if verbs is None:
        return True
    after = list(argv)[list(argv).index(command) + 1:]
    return bool(after) and after[0] in verbs


def forward(argv: Sequence[str], command: str | None) -> int | None:
    """Run `argv` in the resident ADW and return its exit status, its output written here; None to run it in
    this process (no resident ADW, not a command it serves, a refusal)."""
    if not handed_over(argv, command):
        return None
    try:
        here = os.getcwd()  # FileNotFoundError: deleted under the shell; the command says so, or -C is enough
        common = common_dir_of(os.path.join(here, _option_c(argv)))
    except OSError:
        return None
    if common is None:
        return None
    path = socket_path(common)
    if not private_folder(os.path.dirname(path)):  # a socket others could have put there: not one to trust
        return None
    # `environ`: the command runs with this process's whole environment (a setup command reads it); `env`: the
    # part the resident ADW must share, since it was read when ADW was imported.
    request: dict[str, object] = {
        "argv": list(argv), "cwd": here, "common": common, "version": __version__, "env": request_environment(),
        "environ": dict(os.environ),
    }
    try:
        reply = _exchange(path, request)
    except OSError:
        return None  # nobody listens (never started, stopped, or killed): run here
    except ResidentStopped as exc:  # running it again here could undo twice
        print(f"adw: {exc} `adw {' '.join(argv)}`; {_WHERE_THINGS_ARE}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # the resident ADW runs on; a process of its own would stop, maybe half-way
        print(f"adw: interrupted; the resident ADW may still finish `adw {' '.join(argv)}`: {_WHERE_THINGS_ARE}",
              file=sys.stderr)
        return 130
    if "refused" in reply:
        return None
    # Written as `print` would: nowhere when the stream is closed (`>&-`, Python's sys.stdout is None).
    try:
        if sys.stdout is not None:
            sys.stdout.write(str(reply["stdout"]))
            sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (`| head`): nothing left to say, as in a process of its own
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    if sys.stderr is not None:
        sys.stderr.write(str(reply["stderr"]))
    return int(str(reply["code"]))


def private_folder(folder: str | os.PathLike[str]) -> bool:
    """Whether only this user may enter `folder` (missing: no)."""
    try:
        status = os.stat(folder)
    except OSError:
        return False
    return status.st_uid == os.getuid() and not status.st_mode & 0o077


def _option_c(argv: Sequence[str]) -> str:
    """The folder of `-C PATH` before the command (the last one wins, as argparse has it), or "."."""
    folder = "."
    for word, following in zip(argv, [*argv[1:], None], strict=True):
        if not word.startswith("-"):
            break
        if word == "-C" and following is not None:
            folder = following
    return folder


def _exchange(path: str, request: dict[str, object]) -> dict[str, object]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.connect(path)  # OSError: nothing to hand over to
        connection.sendall(json.dumps(request).encode() + b"\n")
        connection.shutdown(socket.SHUT_WR)
        chunks, size = [], 0
        while chunk := connection.recv(1 << 16):
            chunks.append(chunk)
            size += len(chunk)
            if size > REPLY_LIMIT:
                raise ResidentStopped("the resident ADW answered too much to")
    try:
        reply: dict[str, object] = json.loads(b"".join(chunks))
    except ValueError:  # nothing, or half an answer: it went away while running the command or answering
        raise ResidentStopped("the resident ADW stopped while running") from None
    return reply
