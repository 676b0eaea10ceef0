"""The ray executor on a real two-node local cluster (tests/cluster/conftest.py): the demo SDLC gives the commits
the local executor gives, and a cancel reaches the agent on its node."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from adw.config import AdwConfig, AgentsConfig
from adw.sdlc.demo import SPECS, create_demo_repo
from adw.sdlc.engine import agent_factories
from adw.workflow.engine import Engine
from adw.workflow.events import BaseEvent, OutputLine, Progress
from adw.workflow.models import TaskState
from adw.workflow.store import Store
from tests.agents.test_agents_follow_up import own
from tests.cluster.conftest import Cluster
from tests.conftest import MakeRepo
from tests.fakes import command_task, python
from tests.realistic import COUPONS, RealisticProject

pytestmark = pytest.mark.cluster

ADW = Path(sys.executable).with_name("adw")
# The same author, committer and dates on both runs: equal content makes equal commits.
_FIXED = {
    "GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.com", "GIT_AUTHOR_DATE": "2026-01-02T03:04:05Z",
    "GIT_COMMITTER_NAME": "Ada", "GIT_COMMITTER_EMAIL": "ada@example.com",
    "GIT_COMMITTER_DATE": "2026-01-02T03:04:05Z",
}


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def _sdlc(repo: Path, *flags: str) -> list[dict[str, object]]:
    done = subprocess.run(
        [str(ADW), "-C", str(repo), "sdlc", *(f"specs/{name}.md" for name in SPECS), "--json", *flags],
        capture_output=True, text=True, timeout=600, env={**os.environ, **_FIXED},
    )
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    workflows: list[dict[str, object]] = json.loads(done.stdout)["workflows"]
    return workflows


def _commit(repo: Path, branch: str) -> str:
    """The branch's commit object as text, but for the workflow's id (random: two runs never share one)."""
    text = _git(repo, "cat-file", "commit", branch)
    return "\n".join(line for line in text.splitlines() if not line.startswith("ADW-Workflow: "))


# A phase's events, results and cancel are the same through the head's GCS address and through Ray Client.
_ADDRESSES = pytest.mark.parametrize("address", ["address", "client_address"], ids=["direct", "ray-client"])


@_ADDRESSES
def test_the_demo_sdlc_on_ray_makes_the_commits_the_local_executor_makes(
    tmp_path: Path, ray_cluster: Cluster, monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    for name, value in _FIXED.items():
        monkeypatch.setenv(name, value)
    local, remote = tmp_path / "local", tmp_path / "remote"
    asyncio.run(create_demo_repo(local))
    asyncio.run(create_demo_repo(remote))
    assert _git(local, "rev-parse", "HEAD") == _git(remote, "rev-parse", "HEAD")

    ran_locally = _sdlc(local)
    ran_on_ray = _sdlc(remote, "--executor", "ray", "--address", getattr(ray_cluster, address))

    assert [wf["state"] for wf in ran_locally + ran_on_ray] == ["succeeded"] * 2 * len(SPECS)
    for name in SPECS:
        branch = f"adw/{name}"
        assert _git(local, "rev-parse", f"{branch}^{{tree}}") == _git(remote, "rev-parse", f"{branch}^{{tree}}")
        assert _commit(local, branch) == _commit(remote, branch)
        # The worktrees are left alike too, files not committed included.
        left = [_git(_worktree(repo, name), "status", "--porcelain", "-uall") for repo in (local, remote)]
        assert left[0] == left[1]
    for workflow in ran_on_ray:
        log = subprocess.run([str(ADW), "-C", str(remote), "logs", str(workflow["id"]), "--task", "build"],
                             capture_output=True, text=True, timeout=60, check=True).stdout
        assert "running on node" in log  # the phase's events came back from its node


def test_a_realistic_projects_checks_on_ray_judge_only_the_change_as_locally(
    realistic_project: RealisticProject, ray_cluster: Cluster
) -> None:
    """Its own .venv, a failing test and a lint finding already on main: the checks' run on the base commit, whose
    checkout is a folder where ADW runs, is made there (sent to a node it failed, and the old failure was new)."""
    root = realistic_project.root
    realistic_project.write("specs/coupons.md", COUPONS)
    done = subprocess.run(
        [str(ADW), "-C", str(root), "sdlc", "specs/coupons.md", "--json", "--executor", "ray", "--address",
         ray_cluster.address],
        capture_output=True, text=True, timeout=600, env={**os.environ, **_FIXED},
    )
    [workflow] = json.loads(done.stdout)["workflows"]
    tasks = {task["phase"]: task for task in workflow["tasks"]}
    assert workflow["state"] == "succeeded", [(t["phase"], t["state"], t["reason"]) for t in workflow["tasks"]]
    assert "0 new, 1 pre-existing" in tasks["test"]["summary"] and "0 new, 1 pre-existing" in tasks["review"]["summary"]
    assert all(tasks[phase]["attempts"][-1]["node"] for phase in ("build", "test", "review"))


def test_adw_cluster_status_lists_the_nodes_and_their_free_agent_slots(ray_cluster: Cluster, tmp_path: Path) -> None:
    done = subprocess.run(
        [str(ADW), "-C", str(tmp_path), "cluster", "status", "--address", ray_cluster.address, "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert [(node["alive"], node["agent_slots"], node["cpus"]) for node in found["nodes"]] == [(True, 1, 1.0)] * 2
    assert (found["agent_slots"], found["free_agent_slots"], found["running_phases"]) == (2, 2, 0)


def _worktree(repo: Path, name: str) -> Path:
    return repo.parent / f"{repo.name}.worktrees" / name


@_ADDRESSES
async def test_a_cancel_stops_the_agent_on_its_node(
    tmp_path: Path, ray_cluster: Cluster, make_repo: MakeRepo, address: str
) -> None:
    repo = make_repo()
    pid_file = tmp_path / "agent.pid"
    # The agent says it started, then works for ten minutes unless stopped.
    agent = python(
        f"import os, pathlib, time; pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid())); "
        "print('working', flush=True); time.sleep(600)"
    )
    workflow = own(repo, [command_task("long", agent)])
    config = AdwConfig(executor="ray", address=getattr(ray_cluster, address), agents=AgentsConfig(stop_grace=0.5))
    engine = Engine(None, config, agents=agent_factories())
    try:
        async with engine.subscribe(workflow.id) as events:
            run = asyncio.create_task(engine.run(workflow))
            async for event in events:
                if isinstance(event, OutputLine) and event.text == "working":
                    break  # streamed from the node while the agent runs
            pid = int(pid_file.read_text())
            assert psutil.pid_exists(pid)
            assert engine.cancel(workflow.id, "long")
            done = await run
    finally:
        engine.close()
    task = done.task("long")
    assert (task.state, task.reason) == (TaskState.CANCELLED, "cancelled by user")
    assert await _gone(pid)


async def _gone(pid: int) -> bool:
    """Whether the process ends within a minute (the node stops it after its cancel; the test does not time it)."""
    for _ in range(600):
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        await asyncio.sleep(0.1)
    return False


async def test_a_secret_reaches_the_agent_by_name_and_no_bundle_store_or_log(
    ray_cluster: Cluster, make_repo: MakeRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = f"sk-test-{secrets.token_hex(12)}"
    monkeypatch.setenv("ANTHROPIC_API_KEY", secret)
    repo = make_repo()
    # The agent shows it has the key without printing it, in a file that comes back in the result bundle.
    agent = python(
        "import hashlib, os, pathlib; key = os.environ['ANTHROPIC_API_KEY'].encode(); "
        "pathlib.Path('key.sha256').write_text(hashlib.sha256(key).hexdigest()); print('done')"
    )
    workflow = own(repo, [command_task("use-key", agent)])
    config = AdwConfig(executor="ray", address=ray_cluster.address)
    engine = Engine(Store.for_common_dir(repo / ".git"), config, agents=agent_factories())
    try:
        done = await engine.run(workflow)
    finally:
        engine.close()
    assert done.task("use-key").state is TaskState.SUCCEEDED, done.task("use-key").reason
    assert (repo / "key.sha256").read_text() == hashlib.sha256(secret.encode()).hexdigest()
    objects = await asyncio.to_thread(_every_object, repo)
    assert hashlib.sha256(secret.encode()).hexdigest().encode() in objects  # the landed objects are searched too
    written = [path for root in (repo / ".git", ray_cluster.temp) for path in root.rglob("*") if path.is_file()]
    assert any(path.name.startswith("raylet") for path in written)  # Ray's own logs are among them
    assert not [path for path in written if secret.encode() in path.read_bytes()]
    assert secret.encode() not in objects


def _every_object(repo: Path) -> bytes:
    """Every object of the repository, uncompressed."""
    batch = ["git", "cat-file", "--batch-all-objects", "--batch"]
    return subprocess.run(batch, cwd=repo, capture_output=True, check=True).stdout


# An agent that commits one file, then deletes a tracked one and adds an untracked one without committing.
_COMMITTING_AGENT = python(
    "import pathlib, subprocess; "
    "pathlib.Path('made.txt').write_text('committed\\n'); "
    "subprocess.run(['git', 'add', 'made.txt'], check=True); "
    "subprocess.run(['git', 'commit', '-q', '-m', 'agent: made.txt'], check=True); "
    "pathlib.Path('README.md').unlink(); pathlib.Path('notes.txt').write_text('not committed\\n'); print('done')"
)


async def test_an_agent_that_commits_on_a_node_leaves_the_branch_and_files_a_local_run_leaves(
    ray_cluster: Cluster, make_repo: MakeRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in _FIXED.items():
        monkeypatch.setenv(name, value)
    repos = {"local": make_repo(name="local"), "ray": make_repo(name="ray")}
    configs = {"local": AdwConfig(), "ray": AdwConfig(executor="ray", address=ray_cluster.address)}
    for kind, repo in repos.items():
        engine = Engine(None, configs[kind], agents=agent_factories())
        try:  # the node's agent gets the fixed identity and dates from its phase's env, as the local one does
            done = await engine.run(own(repo, [command_task("work", _COMMITTING_AGENT, env=_FIXED)]))
        finally:
            engine.close()
        assert done.task("work").state is TaskState.SUCCEEDED, (kind, done.task("work").reason)
    heads, left = {}, {}
    for kind, repo in repos.items():
        heads[kind] = await asyncio.to_thread(_git, repo, "rev-parse", "HEAD", "HEAD^", "main")
        left[kind] = await asyncio.to_thread(_git, repo, "status", "--porcelain", "-uall")
    assert heads["local"] == heads["ray"]  # the same commit, on the branch, bit for bit
    assert left["local"] == left["ray"] == " D README.md\n?? notes.txt\n"


async def test_a_check_whose_worker_is_killed_runs_again_in_a_fresh_clone_and_its_agent_is_gone(
    tmp_path: Path, ray_cluster: Cluster, make_repo: MakeRepo
) -> None:
    repo = make_repo()
    attempts = tmp_path / "attempts"
    # The first attempt works for ten minutes; a second one (Ray's retry of a check) ends at once.
    agent = python(
        f"import os, pathlib, time; attempts = pathlib.Path({str(attempts)!r}); first = not attempts.exists(); "
        "attempts.open('a').write(f'{os.getpid()}\\n'); print('working', flush=True); time.sleep(600 if first else 0)"
    )
    workflow = own(repo, [command_task("check", agent)])
    engine = Engine(None, AdwConfig(executor="ray", address=ray_cluster.address), agents=agent_factories())
    try:
        async with engine.subscribe(workflow.id) as events:
            run = asyncio.create_task(engine.run(workflow))
            async for event in events:
                if isinstance(event, OutputLine) and event.text == "working":
                    break
            first = int(attempts.read_text().split()[0])
            worker = psutil.Process(first).parent()
            assert worker is not None and worker.name() == "ray::_phase_task"  # the worker titles itself so
            worker.kill()  # SIGKILL of the Ray worker running the phase
            done = await run
    finally:
        engine.close()
    task = done.task("check")
    assert task.state is TaskState.SUCCEEDED, task.reason
    assert len(attempts.read_text().split()) == 2
    assert await _gone(first)  # the killed worker's agent does not outlive it


_WHERE = re.compile(r"running on node (\w+) \(.*\): (\w+), (fetched its history|its history from the node's cache)")


async def test_a_node_fetches_a_commits_history_once_and_then_only_what_new_commits_add(
    ray_cluster: Cluster, make_repo: MakeRepo
) -> None:
    repo = make_repo()
    # Five phases one after the other on two nodes; the third commits, so the last two ship a new HEAD.
    done = python("print('done')")
    commit = python(
        "import pathlib, subprocess; pathlib.Path('made.txt').write_text('committed\\n'); "
        "subprocess.run(['git', 'add', 'made.txt'], check=True); "
        "subprocess.run(['git', 'commit', '-q', '-m', 'agent: made.txt'], check=True)"
    )
    tasks = [command_task("p1", done), command_task("p2", done, ["p1"]), command_task("p3", commit, ["p2"], env=_FIXED),
             command_task("p4", done, ["p3"]), command_task("p5", done, ["p4"])]
    workflow = own(repo, tasks)
    engine = Engine(None, AdwConfig(executor="ray", address=ray_cluster.address), agents=agent_factories())
    try:
        async with engine.subscribe(workflow.id) as events:
            run = asyncio.create_task(engine.run(workflow))
            phases = [event for event in [event async for event in _until(events, run)]
                      if isinstance(event, Progress) and event.message.startswith("running on node")]
            finished = await run
    finally:
        engine.close()
    assert [task.state for task in finished.tasks] == [TaskState.SUCCEEDED] * 5
    found = [_WHERE.match(event.message) for event in phases]
    where = [(match[1], match[2], match[3] == "fetched its history") for match in found if match]
    assert len(where) == 5
    heads = [head for _, head, _ in where]
    assert heads[0] == heads[1] == heads[2] != heads[3] == heads[4]  # the phases after p3 ship its commit
    seen: set[tuple[str, str]] = set()
    for node, head, fetched in where:
        assert fetched == ((node, head) not in seen)  # a node fetches a commit's history once, then has it
        seen.add((node, head))
    assert len({node for node, _, _ in where}) < 5  # so some node ran two phases of one head, fetching once
    assert (repo / "made.txt").read_text() == "committed\n"


async def _until(events: AsyncIterator[BaseEvent], run: asyncio.Task[object]) -> AsyncIterator[BaseEvent]:
    """The workflow's events until its run ends."""
    while True:
        step = asyncio.ensure_future(anext(events))
        await asyncio.wait({step, run}, return_when=asyncio.FIRST_COMPLETED)
        if not step.done():
            step.cancel()
            return
        yield step.result()
