"""Language server latency, measured through the real server (`python -m adw lsp`) over stdio, as an editor sees it.

    .venv/bin/python benchmarks/lsp.py [--worktrees 50] [--checkpoints 1000] [--files 10000] [--json]

1. Lenses: a repository with 50 linked worktrees and 1,000 checkpoints (20 per worktree, each but the first
   changing the file asked about, made through git plumbing with ADW's checkpoint format). textDocument/codeLens
   on a file in every worktree plus a spec file: the first request of each worktree (cold, fills the caches),
   then 20 rounds over all 51 files (warm). Round-trip wall time per request, client side, next to the
   transport floor (a request the server answers at once, interleaved with the lens requests); then the same
   requests through the server's codeLens handler called in-process, which is the lens computation alone
   (wall time, and CPU time of the thread, which a loaded machine does not inflate).
2. Never block: a 10,000-file repository, two SDLC workflows whose test ‖ review ‖ document phases are six
   `command` agents printing a line every 0.1 s (so six agents run at once; the engine checkpoints the two
   10,000-file worktrees around every phase), and, while the six run, `adw.server.checkpoint` of the 10,000-file
   main worktree with 200 files changed. A probe sends textDocument/codeLens and adw.server.status every 20 ms;
   latencies are split into "six agents running" and "during the 10,000-file checkpoint".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.client import LanguageClient
from pygls.uris import from_fs_path

from adw.git.checkpoints import Checkpoints, ref_id
from adw.git.refs import UNDO_NS
from adw.lsp import create_server

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.com", "GIT_CONFIG_NOSYSTEM": "1",
}
SPEC = "# Demo\n\nNothing to build.\n"


def git(cwd: Path, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True, input=input,
        env={**os.environ, **GIT_ENV, **(env or {})},
    ).stdout.strip()


def make_repo(root: Path, files: int) -> None:
    root.mkdir(parents=True)
    (root / "specs").mkdir()
    (root / "specs/demo.md").write_text(SPEC)
    (root / "specs/other.md").write_text(SPEC)
    (root / "src").mkdir()
    (root / "src/app.py").write_text("VALUE = 0\n")
    for number in range(files):
        folder = root / "pkg" / f"d{number // 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{number:05d}.txt").write_text(f"file {number}\n" * 8)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")


def uri(path: Path) -> str:
    return from_fs_path(str(path)) or path.as_uri()


def stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


async def start_server(root: Path) -> LanguageClient:
    client = LanguageClient("adw-bench", "1")
    await client.start_io(sys.executable, "-m", "adw", "lsp", "--stdio", cwd=root, env={**os.environ, **GIT_ENV})
    await client.initialize_async(types.InitializeParams(
        capabilities=types.ClientCapabilities(),  # no progress, no refresh: nothing for the client to answer
        root_uri=uri(root), workspace_folders=[types.WorkspaceFolder(uri=uri(root), name="bench")],
    ))
    client.initialized(types.InitializedParams())
    return client


async def stop_server(client: LanguageClient) -> None:
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()


async def timed(coroutine: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await coroutine
    return time.perf_counter() - started, result


def lens_request(client: LanguageClient, path: Path) -> Any:
    return client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri(path)))
    )


# ---------------------------------------------------------------- 1. lenses


async def make_checkpoints(worktree: Path, count: int, trees: list[str], head: str, head_tree: str) -> None:
    """`count` checkpoints in ADW's format (the trailers `Checkpoints` parses), each a new version of src/app.py."""
    store = await Checkpoints.open(worktree)
    branch = git(worktree, "symbolic-ref", "HEAD")
    ns = f"{UNDO_NS}/{ref_id(store.repo.worktree_id)}/"
    lines = []
    for number in range(1, count + 1):
        message = (f"checkpoint {number}\n\nadw-kind: checkpoint\nadw-branch: {branch}\nadw-head: {head}\n"
                   f"adw-index-tree: {head_tree}\n")
        commit = git(worktree, "commit-tree", trees[number - 1], "-p", head, input=message)
        lines.append(f"create {ns}{number:06d} {commit}")
    git(worktree, "update-ref", "--stdin", input="\n".join(lines) + "\n")


def versions(root: Path, count: int) -> list[str]:
    """HEAD's tree, then trees with src/app.py at new contents, built in a throwaway index."""
    index = {"GIT_INDEX_FILE": str(root / ".git" / "bench-index")}
    git(root, "read-tree", "HEAD", env=index)
    trees = [git(root, "rev-parse", "HEAD^{tree}")]  # the first checkpoint is the worktree as created
    for number in range(2, count + 1):
        blob = git(root, "hash-object", "-w", "--stdin", input=f"VALUE = {number}\n")
        git(root, "update-index", "--add", "--cacheinfo", f"100644,{blob},src/app.py", env=index)
        trees.append(git(root, "write-tree", env=index))
    return trees


async def bench_lenses(base: Path, worktrees: int, checkpoints: int) -> dict[str, Any]:
    root = base / "lenses"
    make_repo(root, files=20)
    per = max(1, checkpoints // worktrees)
    head, head_tree = git(root, "rev-parse", "HEAD"), git(root, "rev-parse", "HEAD^{tree}")
    trees = versions(root, per)
    paths = []
    setup = time.perf_counter()
    for number in range(worktrees):
        path = base / "lenses.worktrees" / f"w{number:02d}"
        git(root, "worktree", "add", "-q", "-b", f"bench/w{number:02d}", str(path), "main")
        await make_checkpoints(path, per, trees, head, head_tree)
        paths.append(path / "src/app.py")
    setup = time.perf_counter() - setup
    files = [root / "specs/demo.md", *paths]

    client = await start_server(root)
    try:
        cold = []
        for path in files:
            elapsed, lenses = await timed(lens_request(client, path))
            cold.append(elapsed)
        titles = [lens.command.title for lens in lenses or [] if lens.command]
        assert any(t.startswith(f"⟲ Undo to checkpoint {per}") for t in titles), titles
        assert "⟲ Undo this file" in titles, titles
        warm, floor = [], []
        for _ in range(20):
            for path in files:
                elapsed, _ = await timed(lens_request(client, path))
                warm.append(elapsed)
                # The transport floor: a request the server answers with [] at once (a link request on a
                # non-Markdown file), to tell the lens computation from the stdio round trip on a loaded machine.
                elapsed, _ = await timed(client.text_document_document_link_async(
                    types.DocumentLinkParams(text_document=types.TextDocumentIdentifier(uri=uri(path)))))
                floor.append(elapsed)
    finally:
        await stop_server(client)
    return {
        **await lenses_in_process(root, files),
        "worktrees": worktrees, "checkpoints": per * worktrees, "setup_s": round(setup, 1),
        "cold": stats(cold), "warm": stats(warm), "floor": stats(floor), "last_titles": titles,
    }


async def lenses_in_process(root: Path, files: list[Path]) -> dict[str, Any]:
    """The lens computation alone: the server's own codeLens handler called in this process (no transport)."""
    server = create_server()
    server._root = root
    handler = server.protocol.fm.features[types.TEXT_DOCUMENT_CODE_LENS]

    def params(path: Path) -> types.CodeLensParams:
        return types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri(path)))

    cold = [(await timed(handler(params(path))))[0] for path in files]
    warm, cpu = [], []
    for _ in range(20):
        for path in files:
            started = time.thread_time()  # CPU time of this thread: the computation, whatever the machine's load
            elapsed, _ = await timed(handler(params(path)))
            cpu.append(time.thread_time() - started)
            warm.append(elapsed)
    return {"handler_cold": stats(cold), "handler_warm": stats(warm), "handler_warm_cpu": stats(cpu)}


# ---------------------------------------------------------------- 2. never block


CHATTY = "import time\nfor i in range({n}):\n    print('working', i, flush=True)\n    time.sleep(0.1)\n"


def phase(name: str, code: str) -> str:
    return f'[phases.{name}]\nagent = "command"\ncommand = {json.dumps([sys.executable, "-c", code])}\nretries = 0\n'


async def bench_busy(base: Path, files: int, agent_seconds: float) -> dict[str, Any]:
    root = base / "busy"
    started = time.perf_counter()
    make_repo(root, files=files)
    chatty = CHATTY.format(n=int(agent_seconds * 10))
    config = phase("plan", "pass") + phase("build", "pass")
    config += "".join(phase(name, chatty) for name in ("test", "review", "document"))
    (root / ".adw.toml").write_text(config)
    setup = time.perf_counter() - started

    client = await start_server(root)
    lens_samples: list[tuple[float, float, int]] = []  # (when, latency, agents running)
    status_samples: list[tuple[float, float, int]] = []
    floor_samples: list[tuple[float, float, int]] = []
    running = 0
    window: list[float] = []
    try:
        args = [[str(root / "specs/demo.md"), str(root / "specs/other.md")], {"maxAgents": 6}]
        result = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="adw.server.startSdlc", arguments=args))
        ids = [wf["id"] for wf in result["workflows"]]
        checkpoint: asyncio.Task[Any] | None = None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            when = time.perf_counter()
            elapsed, _ = await timed(lens_request(client, root / "specs/demo.md"))
            lens_samples.append((when, elapsed, running))
            when = time.perf_counter()
            elapsed, _ = await timed(client.text_document_document_link_async(
                types.DocumentLinkParams(text_document=types.TextDocumentIdentifier(uri=uri(root / "src/app.py")))))
            floor_samples.append((when, elapsed, running))
            when = time.perf_counter()
            elapsed, everything = await timed(client.workspace_execute_command_async(
                types.ExecuteCommandParams(command="adw.server.status", arguments=[])))
            ours = [wf for wf in everything if wf["id"] in ids]
            running = sum(t["state"] == "running" and t["kind"] == "agent" for wf in ours for t in wf["tasks"])
            status_samples.append((when, elapsed, running))
            if running >= 6 and checkpoint is None:
                for number in range(200):
                    path = root / "pkg" / f"d{number // 100:03d}" / f"f{number:05d}.txt"
                    path.write_text("changed\n")
                window.append(time.perf_counter())

                async def take() -> Any:
                    done = await client.workspace_execute_command_async(
                        types.ExecuteCommandParams(command="adw.server.checkpoint", arguments=[None, "bench"]))
                    window.append(time.perf_counter())
                    return done

                checkpoint = asyncio.ensure_future(take())
            if ours and all(wf["state"] not in ("pending", "running") for wf in ours):
                break
            await asyncio.sleep(0.02)
        made = await checkpoint if checkpoint else None
        states = [wf["state"] for wf in ours]
    finally:
        await stop_server(client)
    samples = lens_samples + status_samples + floor_samples
    busy = [s for s in samples if s[2] >= 6]
    during = [s for s in samples if len(window) == 2 and window[0] <= s[0] <= window[1]]
    return {
        "files": files, "setup_s": round(setup, 1), "workflows": states,
        "checkpoint_made": bool(made and made["created"]),
        "checkpoint_s": round(window[1] - window[0], 2) if len(window) == 2 else None,
        "six_agents": {"codeLens": stats([s[1] for s in lens_samples if s[2] >= 6] or [0.0]),
                       "status": stats([s[1] for s in status_samples if s[2] >= 6] or [0.0]),
                       "floor": stats([s[1] for s in floor_samples if s[2] >= 6] or [0.0]),
                       "all": stats([s[1] for s in busy] or [0.0])},
        "during_checkpoint": stats([s[1] for s in during] or [0.0]),
        "max_agents_seen": max(s[2] for s in samples),
        # The five slowest requests while six agents ran (seconds since the first probe, request, ms):
        # spikes shared by the instant "floor" request are the machine, not the server's own work.
        "slowest": sorted(
            ((round(s[0] - samples[0][0], 2), kind, round(s[1] * 1000, 1))
             for kind, group in (("codeLens", lens_samples), ("status", status_samples), ("floor", floor_samples))
             for s in group if s[2] >= 6),
            key=lambda row: -row[2],
        )[:5],
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worktrees", type=int, default=50)
    parser.add_argument("--checkpoints", type=int, default=1000)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--agent-seconds", type=float, default=8.0)
    parser.add_argument("--only", choices=("lenses", "busy"), help="run one part")
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    logging.getLogger("pygls").setLevel(logging.ERROR)  # "ignoring notification adw/changed" and the like
    with tempfile.TemporaryDirectory(prefix="adw-lsp-bench-") as folder:
        base = Path(folder)
        home = base / "home"
        home.mkdir()
        os.environ.update({"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")})
        results = {}
        if options.only in (None, "lenses"):
            results["lenses"] = await bench_lenses(base, options.worktrees, options.checkpoints)
        if options.only in (None, "busy"):
            results["busy"] = await bench_busy(base, options.files, options.agent_seconds)
    if options.json:
        print(json.dumps(results, indent=2))
        return
    if lenses := results.get("lenses"):
        print(f"lenses, {lenses['worktrees']} worktrees, {lenses['checkpoints']} checkpoints: "
              f"cold {lenses['cold']}, warm {lenses['warm']}, transport floor {lenses['floor']}")
        print(f"  the handler alone, in process: cold {lenses['handler_cold']}, warm {lenses['handler_warm']}, "
              f"warm CPU time {lenses['handler_warm_cpu']}")
    if busy := results.get("busy"):
        print_busy(busy)


def print_busy(busy: dict[str, Any]) -> None:
    print(f"busy, {busy['files']} files, workflows {busy['workflows']}, checkpoint {busy['checkpoint_s']} s "
          f"(made: {busy['checkpoint_made']}), max agents seen {busy['max_agents_seen']}")
    print(f"  six agents running: {busy['six_agents']}")
    print(f"  during the checkpoint: {busy['during_checkpoint']}")
    print(f"  slowest while six ran (s, request, ms): {busy['slowest']}")


if __name__ == "__main__":
    asyncio.run(main())
