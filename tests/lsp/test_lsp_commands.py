"""Every adw.server.* command end to end against the real server: results, adw/changed, lens refresh, and a
JSON-RPC error (and no showMessage besides) that says what to do on bad input, after which the server still
answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pytest_lsp import LanguageClient

from adw.errors import AdwError, ResumeAction, ShowLogAction
from adw.lsp.server import AdwServer, RequestFailed
from tests.conftest import run_git
from tests.lsp.conftest import (
    Recorder,
    code_lenses,
    command_phase,
    commit_all,
    eventually,
    fails,
    lens,
    make_workspace,
    run,
    run_lens,
    task_of,
    wait_workflow,
    write_config,
)

REQUEST_FAILED = -32803


async def test_worktree_commands(vscode: LanguageClient, workspace: Path, recorder: Recorder) -> None:
    client, root = vscode, workspace
    created = await run(client, "createWorktree", "feat", "main")
    path = Path(created["worktree"]["path"])
    assert created["worktree"]["name"] == "feat" and (path / "src/calc/ops.py").is_file()
    assert created["worktree"]["branch"] == "adw/feat"

    listed = await run(client, "listWorktrees")
    assert sorted(w["name"] for w in listed if not w["is_main"]) == ["feat"]
    assert {w["is_main"] for w in listed} == {True, False}

    (path / "NEWS.md").write_text("news\n")
    commit_all(path, "news")
    preview = await run(client, "mergePreview", "feat")
    assert preview == {**preview, "source": "adw/feat", "target": "main", "clean": True, "conflicts": []}
    assert preview["files"] == [{"path": "NEWS.md", "status": "A", "insertions": 1, "deletions": 0}]
    assert "NEWS.md" in preview["diffstat"] and "1 file changed" in preview["diffstat"]

    merged = await run(client, "merge", "feat", "squash")
    assert merged["merged"] is True and merged["strategy"] == "squash"
    assert (root / "NEWS.md").read_text() == "news\n"  # main is checked out: its files follow the merge

    removed = await run(client, "removeWorktree", "feat")
    assert removed["name"] == "feat" and not path.exists() and removed["archive_ref"] is None

    # Unsaved work is refused unless archived; archive keeps it under a ref.
    other = Path((await run(client, "createWorktree", "scratch"))["worktree"]["path"])
    (other / "draft.txt").write_text("draft\n")
    refused = await fails(client, "removeWorktree", "scratch")
    assert refused.code == REQUEST_FAILED and "would be lost" in str(refused)
    archived = await run(client, "removeWorktree", "scratch", True)
    assert archived["archive_ref"] and not other.exists()
    assert [w["is_main"] for w in await run(client, "listWorktrees")] == [True]

    await eventually(lambda: recorder.refreshes >= 4, 10, "lens refreshes")
    assert {"what": "worktrees"} in [dict(c._asdict()) for c in recorder.changed]


async def test_checkpoint_commands(minimal: LanguageClient, workspace: Path, recorder: Recorder) -> None:
    client, root = minimal, workspace
    ops = root / "src/calc/ops.py"
    v1 = ops.read_text()
    first = await run(client, "checkpoint", None, "first")
    assert first["created"] is True and first["checkpoint"]["number"] == 1
    assert first["checkpoint"]["message"] == "first"
    again = await run(client, "checkpoint")
    assert again["created"] is False  # nothing changed: no empty checkpoint

    v2 = "def add(a, b):\n    return b + a\n"
    ops.write_text(v2)
    second = await run(client, "checkpoint", str(root), "second")  # worktree by path
    assert second["checkpoint"]["number"] == 2

    history = await run(client, "listCheckpoints")
    assert [c["number"] for c in history] == [1, 2]
    assert [c["number"] for c in await run(client, "listCheckpoints", None, "src/calc/ops.py")] == [2]
    assert await run(client, "listCheckpoints", None, "README.md") == []

    v3 = "def add(a, b):\n    return a + b + 0\n"
    ops.write_text(v3)
    undone = await run(client, "undo")  # unsaved changes: back to the newest checkpoint, v3 kept for redo
    assert undone["restored"]["number"] == 2 and undone["saved"]["number"] == 3
    assert ops.read_text() == v2
    listed = await run(client, "listCheckpoints")
    assert [(c["number"], c["redo"]) for c in listed] == [(1, False), (2, False), (3, True)]

    redone = await run(client, "redo", None)
    assert redone["restored"]["number"] == 3 and ops.read_text() == v3

    file_undo = await run(client, "undo", None, ops.as_uri())  # one file, given as a URI
    assert file_undo["path"] == "src/calc/ops.py" and file_undo["restored_from"]["number"] == 2
    assert ops.read_text() == v2

    to_first = await run(client, "undo", None, None, 1)
    assert to_first["restored"]["number"] == 1 and ops.read_text() == v1

    assert {"what": "checkpoints"} in [dict(c._asdict()) for c in recorder.changed]
    assert recorder.refreshes == 0  # the minimal client has no workspace/codeLens/refresh


async def test_checkpoint_changes_and_files_serve_the_native_diff(minimal: LanguageClient, workspace: Path) -> None:
    """What the Checkpoints view's diffs read: the files that differ between two checkpoints (or a checkpoint and
    the current files), and each file's content at a checkpoint."""
    client, root = minimal, workspace
    ops = root / "src/calc/ops.py"
    v1 = ops.read_text()
    await run(client, "checkpoint", None, "first")
    ops.write_text(v1 + "\ndef sub(a, b):\n    return a - b\n")
    (root / "notes.txt").write_text("new\n")
    await run(client, "checkpoint", None, "second")
    (root / "notes.txt").unlink()

    between = await run(client, "checkpointChanges", None, 1, 2)
    assert between["worktree"] == str(root) and (between["number"], between["to"]) == (1, 2)
    assert [(f["path"], f["status"], f["insertions"], f["deletions"]) for f in between["files"]] == [
        ("notes.txt", "A", 1, 0), ("src/calc/ops.py", "M", 3, 0),
    ]
    since = await run(client, "checkpointChanges", str(root), 2)  # checkpoint 2 against the current files
    assert [(f["path"], f["status"]) for f in since["files"]] == [("notes.txt", "D")]

    assert await run(client, "checkpointFile", None, 1, "src/calc/ops.py") == {"exists": True, "binary": False,
                                                                              "text": v1}
    assert (await run(client, "checkpointFile", None, 2, str(root / "notes.txt")))["text"] == "new\n"
    assert await run(client, "checkpointFile", None, 1, "notes.txt") == {"exists": False, "binary": False, "text": ""}
    assert (await run(client, "checkpointFile", None, 1, "src"))["exists"] is False  # a folder is no file
    outside = await fails(client, "checkpointFile", None, 1, "../elsewhere.txt")
    assert outside.code == JsonRpcInvalidParams.CODE and "outside the worktree" in str(outside)


async def test_workflow_commands(vscode: LanguageClient, workspace: Path, tmp_path: Path) -> None:
    """startSdlc, status, cancel of one task, resume: a slow plan phase is cancelled, then resumed fast."""
    client, root = vscode, workspace
    delay = tmp_path / "delay"
    delay.write_text("30")
    sleep = "import sys, time; time.sleep(float(open(sys.argv[1]).read()))"
    write_config(root, command_phase("plan", "-c", sleep, str(delay)))

    started = await run(client, "startSdlc", ["specs/mul.md"], {"maxAgents": 2})
    [workflow] = started["workflows"]
    assert workflow["name"] == "mul" and workflow["spec"] == str((root / "specs/mul.md").resolve())
    wf_id = workflow["id"]

    async def plan_running() -> bool:
        return task_of(await run(client, "status", wf_id), "plan")["state"] == "running"

    await eventually(plan_running, 30, "the plan phase to run")
    everything = await run(client, "status")
    assert wf_id in [wf["id"] for wf in everything]

    unknown = await fails(client, "cancel", wf_id, "deploy")
    assert "has no task 'deploy'" in str(unknown) and "plan" in str(unknown)
    assert await run(client, "cancel", wf_id, "plan") == {"workflow": wf_id, "task": "plan", "cancelled": True}
    cancelled = await wait_workflow(client, wf_id, 30)
    assert cancelled["state"] == "cancelled"
    assert task_of(cancelled, "plan")["state"] == "cancelled"
    assert task_of(cancelled, "build")["state"] == "skipped"
    assert task_of(cancelled, "worktree")["state"] == "succeeded"

    delay.write_text("0")
    assert await run(client, "resume", wf_id) == {"workflow": wf_id, "resumed": True}
    await eventually(lambda: _state(client, wf_id, ("running", "succeeded", "failed")), 10, "resume to start")
    finished = await wait_workflow(client, wf_id)
    assert finished["state"] == "succeeded", finished["reason"]
    assert (Path(finished["cwd"]) / "src/calc/mul.py").is_file()
    assert run_git(Path(finished["cwd"]), "log", "-1", "--format=%s").strip() == "adw: mul"


async def test_worktree_arguments_refuse_other_repositories(
    minimal: LanguageClient, workspace: Path, tmp_path: Path
) -> None:
    """A folder of another repository on disk is no worktree of the workspace: refused, and left untouched."""
    client = minimal
    foreign = make_workspace(tmp_path / "foreign")
    ops = foreign / "src/calc/ops.py"
    ops.write_text("def add(a, b):\n    return 0\n")
    for command, arguments in [
        ("checkpoint", [str(foreign), "x"]),
        ("undo", [str(foreign), str(ops)]),
        ("listCheckpoints", [foreign.as_uri()]),
        ("scout", ["add", str(foreign / "src")]),
    ]:
        error = await fails(client, command, *arguments)
        assert error.code == JsonRpcInvalidParams.CODE, (command, error)
        assert "is not a worktree of the workspace's repository" in str(error), (command, error)
    assert run_git(foreign, "for-each-ref", "refs/adw") == ""
    assert ops.read_text() == "def add(a, b):\n    return 0\n"
    assert not (foreign / "src/scout_outputs").exists() and not (foreign / "scout_outputs").exists()
    # A folder inside a worktree of the workspace is still one of its worktrees.
    assert (await run(client, "checkpoint", str(workspace / "src"), "inside"))["created"] is True


# Each agent marks itself running, then watches for a second agent for up to 1.5 s and records the most it saw.
OVERLAP = (
    "import os, pathlib, sys, time\n"
    "folder = pathlib.Path(sys.argv[1]); me = folder / f'{os.getpid()}.running'; me.touch()\n"
    "seen = 1\n"
    "for _ in range(30):\n"
    "    seen = max(seen, len(list(folder.glob('*.running'))))\n"
    "    if seen > 1: break\n"
    "    time.sleep(0.05)\n"
    "with open(folder / 'seen', 'a') as out: out.write(f'{seen}\\n')\n"
    "me.unlink()\n"
)


async def test_max_agents_option_caps_running_agents(vscode: LanguageClient, workspace: Path, tmp_path: Path) -> None:
    """test ‖ review ‖ document run in parallel; with `maxAgents: 1` they must take turns."""
    client, root = vscode, workspace
    folder = tmp_path / "agents"
    folder.mkdir()
    write_config(root, "".join(command_phase(phase, "-c", OVERLAP, str(folder)) for phase in PARALLEL))
    [workflow] = (await run(client, "startSdlc", ["specs/mul.md"], {"maxAgents": 1}))["workflows"]
    finished = await wait_workflow(client, workflow["id"])
    assert finished["state"] == "succeeded", finished["reason"]
    # test and review run the same command, so it also ran once on the base commit (cached by base tree and
    # command), in the same slot.
    assert (folder / "seen").read_text().split() == ["1"] * (len(PARALLEL) + 1)


PARALLEL = ("test", "review", "document")


async def test_start_sdlc_of_a_spec_whose_worktree_exists_offers_the_choices(
    minimal: LanguageClient, workspace: Path, tmp_path: Path
) -> None:
    """Refused with the choices (nothing started, no message shown: the client asks), then each choice."""
    client, root = minimal, workspace
    verdict = tmp_path / "plan-verdict"
    verdict.write_text("fail")
    write_config(root, command_phase("plan", "-c", "import sys; sys.exit(open(sys.argv[1]).read() == 'fail')",
                                     str(verdict)))
    [first] = (await run(client, "startSdlc", ["specs/mul.md"]))["workflows"]
    assert (await wait_workflow(client, first["id"]))["state"] == "failed"

    shown = len(client.messages)
    refused = await fails(client, "startSdlc", ["specs/mul.md"])
    assert refused.code == REQUEST_FAILED and "a worktree exists" in str(refused)
    data = refused.data
    assert data["error"] == "WorktreeExistsError" and data["choices"] == ["resume", "again", "replace"]
    # The editor's buttons, one per choice: the failed workflow can be resumed.
    spec = str((root / "specs/mul.md").resolve())
    assert data["actions"] == [
        {"title": title, "kind": "rerun", "specs": [spec], "existing": choice}
        for title, choice in [("Resume", "resume"), ("Run in a New Worktree", "again"), ("Remove and Rerun", "replace")]
    ]
    assert "options.existing" not in str(refused)  # the message is the editor's; the protocol's hint is in data
    [entry] = data["existing"]
    assert entry["worktree"] == "mul" and entry["workflow_id"] == first["id"] and entry["workflow_state"] == "failed"
    assert len(client.messages) == shown
    assert [wf["id"] for wf in await run(client, "status")] == [first["id"]]

    verdict.write_text("ok")
    [resumed] = (await run(client, "startSdlc", ["specs/mul.md"], {"existing": "resume"}))["workflows"]
    assert resumed["id"] == first["id"] and resumed["resumed"] is True
    assert (await wait_workflow(client, first["id"]))["state"] == "succeeded"

    [again] = (await run(client, "startSdlc", ["specs/mul.md"], {"existing": "again"}))["workflows"]
    finished = await wait_workflow(client, again["id"])
    assert finished["state"] == "succeeded" and finished["worktree"] == "mul-2" and again["resumed"] is False

    (Path(finished["cwd"]).parent / "mul" / "draft.txt").write_text("unsaved\n")
    [replaced] = (await run(client, "startSdlc", ["specs/mul.md"], {"existing": "replace"}))["workflows"]
    finished = await wait_workflow(client, replaced["id"])
    assert finished["state"] == "succeeded" and finished["worktree"] == "mul"
    assert not (Path(finished["cwd"]) / "draft.txt").exists()
    archived = run_git(root, "for-each-ref", "--format=%(refname)", "refs/adw/archive/")
    assert "refs/adw/archive/mul/" in archived  # the replaced worktree's work, draft included, is kept


async def test_the_spec_lens_asks_what_to_do_with_an_existing_worktree(vscode: LanguageClient, workspace: Path) -> None:
    """The lens passes `existing: "ask"`: the server asks the user (showMessageRequest) and does what they pick."""
    client = vscode
    asked: list[types.ShowMessageRequestParams] = []
    answers = [None, "Run in a New Worktree"]

    @client.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)
    def _ask(params: types.ShowMessageRequestParams) -> types.MessageActionItem | None:
        asked.append(params)
        title = answers.pop(0)
        return types.MessageActionItem(title=title) if title else None

    await run(client, "createWorktree", "mul")
    start = lens(await code_lenses(client, workspace / "specs/mul.md"), "$(play) Start Parallel SDLC")
    assert await run_lens(client, start) == {"workflows": []}  # dismissed: nothing starts
    # No workflow ran in a worktree made by hand: nothing to resume, so neither the question nor a button says so.
    assert "a worktree exists" in asked[0].message and "no ADW workflow ran there" in asked[0].message
    assert "resume" not in asked[0].message.lower()
    assert [a.title for a in asked[0].actions or []] == ["Run in a New Worktree", "Remove and Rerun"]
    [again] = (await run_lens(client, start))["workflows"]
    finished = await wait_workflow(client, again["id"])
    assert finished["state"] == "succeeded" and finished["worktree"] == "mul-2"


async def _state(client: LanguageClient, wf_id: str, states: tuple[str, ...]) -> bool:
    return (await run(client, "status", wf_id))["state"] in states


# (command, arguments, text the error must contain): every command refuses bad input with advice.
BAD_INPUT: list[tuple[str, list[Any], str]] = [
    ("startSdlc", [], "needs `specs`"),
    ("startSdlc", [["specs/nope.md"]], "no such spec"),
    ("startSdlc", [["specs/mul.md"], "fast"], "`options` should be an object"),
    ("startSdlc", [["specs/mul.md"], {"maxAgents": 0}], "`options.maxAgents` should be greater than or equal to 1"),
    ("startSdlc", [["specs/mul.md"], {"maxAgent": 2}], "has no argument `options.maxAgent`"),
    ("scout", [], "needs `task`"),
    ("scout", [42], "`task` should be a valid string (got 42)"),
    ("scout", ["x", "no-such-worktree"], "no worktree named"),
    ("listWorktrees", ["extra"], "takes at most 0 argument"),
    ("createWorktree", [], "needs `name`"),
    ("createWorktree", ["-bad"], "invalid worktree name"),
    ("createWorktree", ["ok", "no-such-base"], "no-such-base"),
    ("mergePreview", ["ghost"], "no worktree named 'ghost'"),
    ("merge", ["ghost", "octopus"], "`strategy` should be 'merge', 'squash' or 'rebase' (got 'octopus')"),
    ("merge", [{"name": "ghost", "strategy": "octopus"}], "`strategy` should be 'merge'"),  # named arguments
    ("merge", [{"strategy": "squash"}], "merge: needs `name`"),
    ("merge", ["ghost"], "no worktree named 'ghost'"),
    ("removeWorktree", ["ghost"], "no worktree named 'ghost'"),
    ("removeWorktree", ["ghost", "yes"], "`archive` should be a valid boolean"),
    ("checkpoint", ["ghost"], "no worktree named 'ghost'"),
    ("checkpoint", ["a\0b"], "`worktree` must not contain a NUL character"),
    ("undo", [], "no checkpoint to undo"),
    ("undo", [None, None, "latest"], "`to` should be a valid integer"),
    ("redo", [], "nothing to redo"),
    ("listCheckpoints", ["ghost"], "no worktree named 'ghost'"),
    ("checkpointChanges", [None, 9], "there is no checkpoint 9"),
    ("checkpointFile", [None, 1], "checkpointFile: needs `file`"),
    ("checkpointFile", [None, 9, "README.md"], "there is no checkpoint 9"),
    ("cancel", [], "needs `workflow`"),
    ("cancel", ["wf-ghost"], "no workflow 'wf-ghost'"),
    ("resume", ["wf-ghost"], "no workflow 'wf-ghost'"),
    ("status", ["wf-ghost"], "no workflow 'wf-ghost'"),
]


async def test_bad_input_is_an_error_with_advice_and_the_server_lives_on(minimal: LanguageClient) -> None:
    client = minimal
    for command, arguments, text in BAD_INPUT:
        shown = len(client.messages)
        error = await fails(client, command, *arguments)
        assert text in str(error), (command, arguments, str(error))
        assert error.code in (JsonRpcInvalidParams.CODE, REQUEST_FAILED), (command, error.code)
        # The error answer is the one report (the editor shows it): no showMessage besides.
        assert client.messages[shown:] == [], (command, client.messages[shown:])
        assert " — " in str(error), f"{command}: the message should say what to do: {error}"
        assert "`adw" not in str(error) and " --" not in str(error), f"{command}: CLI words in the editor: {error}"
    # Wrong argument types are InvalidParams, refusals of valid input RequestFailed.
    assert (await fails(client, "createWorktree", "-bad")).code == JsonRpcInvalidParams.CODE
    assert (await fails(client, "redo")).code == REQUEST_FAILED
    listed = await run(client, "listWorktrees")
    assert listed[0]["is_main"] is True


async def test_an_errors_actions_reach_the_client_in_its_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever command fails, its error's next steps are in `data.actions`, typed by kind (the extension's
    toast buttons); the message stays the editor's."""
    server = AdwServer()

    async def no_configuration() -> None:  # no workspace here: nothing to load
        pass

    monkeypatch.setattr(server, "check_config", no_configuration)

    async def refuse() -> object:
        raise AdwError("workflow wf-1 failed at test", "see `adw logs wf-1`", "see its log",
                       [ShowLogAction(title="Show Log", workflow="wf-1", task="test"),
                        ResumeAction(title="Resume", workflow="wf-1")])

    with pytest.raises(RequestFailed) as raised:
        await server.answer("status", refuse)
    assert str(raised.value) == "workflow wf-1 failed at test — see its log"
    assert raised.value.data["actions"] == [
        {"title": "Show Log", "kind": "showLog", "workflow": "wf-1", "task": "test"},
        {"title": "Resume", "kind": "resume", "workflow": "wf-1"},
    ]
