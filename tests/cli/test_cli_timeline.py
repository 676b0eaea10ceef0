"""`adw timeline`: a run's lanes and figures in the terminal, the same as JSON, and the HTML and SVG files."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

from adw.workflow.models import Attempt, Task, TaskState, Workflow
from adw.workflow.store import Store
from tests.cli.test_cli_smoke import adw


def _run(repo: Path) -> None:
    """Two workflows of one run: `add` built while `greet` waited 2 s for the one agent slot."""

    def workflow(name: str, start: float, queued: float | None) -> Workflow:
        attempt = Attempt(number=1, state=TaskState.SUCCEEDED, queued_at=queued, started_at=start,
                          finished_at=start + 4)
        build = Task(id="build", phase="build", agent="claude", state=TaskState.SUCCEEDED, attempts=[attempt])
        return Workflow(id=f"{name}-0001", name=name, repo=str(repo), cwd=str(repo), run_id="run-cafe",
                        state=TaskState.SUCCEEDED, created_at=start, started_at=start, tasks=[build])

    store = Store.for_common_dir(repo / ".git")
    try:
        store.save(workflow("add", 100.0, None))
        store.save(workflow("greet", 104.0, 102.0))
    finally:
        store.close()


def test_timeline_prints_each_lane_and_writes_the_page_and_the_picture(repo: Path) -> None:
    _run(repo)
    out = adw(repo, "timeline", "greet-0", "--html", "run.html", "--svg", "run.svg").stdout
    assert out.startswith("run run-cafe: 2 workflow(s)\n")
    assert "wall 8.00s, the same tasks one after another 8.00s: speedup 1.00×" in out
    assert "waited for an agent slot: 2.00s in all" in out
    assert "critical path: greet/build" in out
    assert "add [add-0001]: succeeded" in out and "greet [greet-0001]: succeeded" in out
    assert f"wrote {repo / 'run.html'}" in out
    page = (repo / "run.html").read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and "<script>" in page
    picture = ElementTree.fromstring((repo / "run.svg").read_text(encoding="utf-8"))
    states = [el.get("data-state") for el in picture.iter() if el.get("class") == "adw-bar"]
    assert states == ["succeeded", "queued", "succeeded"]


def test_timeline_json_is_the_model(repo: Path) -> None:
    _run(repo)
    drawn = json.loads(adw(repo, "timeline", "run-cafe", "--json").stdout)
    assert drawn["run_id"] == "run-cafe" and drawn["slot_wait"] == 2.0 and drawn["speedup"] == 1.0
    assert [lane["name"] for lane in drawn["lanes"]] == ["add", "greet"]
    assert [bar["state"] for bar in drawn["lanes"][1]["bars"]] == ["queued", "succeeded"]


def test_timeline_without_an_id_draws_the_newest_run(repo: Path) -> None:
    assert "no run to draw" in adw(repo, "timeline", code=2).stderr
    _run(repo)
    assert adw(repo, "timeline").stdout.startswith("run run-cafe: 2 workflow(s)\n")


def test_timeline_of_an_unknown_id_or_to_an_unwritable_file_says_what_to_do(repo: Path) -> None:
    refused = adw(repo, "timeline", "nope", code=2)
    assert "no workflow 'nope'" in refused.stderr and "adw status" in refused.stderr
    _run(repo)
    unwritable = adw(repo, "timeline", "run-cafe", "--svg", "no/such/folder/run.svg", code=2)
    assert "cannot write" in unwritable.stderr and "give --svg a file in a folder you can write to" in unwritable.stderr
    assert not (repo / "no").exists()
