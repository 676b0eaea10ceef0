"""`adw sdlc | resume | say | demo`: running workflows from the command line, with every agent, SDLC step and the forge.

Every command is a subscriber of the engine; none holds logic of its own. The store's readers (`status`, `cancel`,
`logs`) are in `adw.cli.runs`, which loads none of that.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, get_args

from adw.agents.preflight import preflight_workflows
from adw.cli.attention import Attention
from adw.cli.forge import pull_requests
from adw.cli.output import add_json_flag, emit
from adw.cli.runs import print_transcript
from adw.config import MAX_AGENTS, ExecutorKind
from adw.errors import AdwError
from adw.forge.client import connect
from adw.forge.issues import issue_workflows
from adw.forge.providers import Provider
from adw.git.repo import Repo
from adw.git.worktrees import Worktrees
from adw.sdlc.best_of import best_of_workflows
from adw.sdlc.demo import create_demo_repo
from adw.sdlc.engine import open_engine
from adw.sdlc.pipeline import Existing, ExistingWorktree, WorktreeExistsError, sdlc_workflows
from adw.workflow.engine import Engine, NothingToResumeError
from adw.workflow.events import Progress, TaskFinished, TaskStarted
from adw.workflow.models import Finding, FollowUp, TaskState, Workflow


def register(subparsers: Any) -> None:
    sdlc = subparsers.add_parser(
        "sdlc",
        description="For each SPEC (Markdown): a worktree named after it, the scouts, plan, build, then test, review "
        "and document in parallel, one commit summing up every phase, and a merge preview against the base.",
    )
    sdlc.add_argument("specs", nargs="*", metavar="SPEC", help="Markdown spec files")
    sdlc.add_argument(
        "--issue",
        metavar="N|URL",
        help="use an issue of the repository's forge as the spec: title, body, labels and comments "
        "(worktree NUMBER-TITLE; labels bug/feature/chore choose the prompts)",
    )
    sdlc.add_argument(
        "--pr", action="store_true", help="then push each branch and open or update its draft pull request"
    )
    sdlc.add_argument(
        "--max-agents",
        type=_agent_count,
        metavar="N",
        help=f"agents running at once, 1 to {MAX_AGENTS} (default: from cores and memory)",
    )
    _add_executor_flags(sdlc)
    rerun = sdlc.add_mutually_exclusive_group()
    rerun.add_argument(
        "--resume",
        action="store_true",
        help="a spec whose worktree exists: resume its workflow (what did not succeed, with the current configuration)",
    )
    rerun.add_argument(
        "--again", action="store_true", help="a spec whose worktree exists: run it in a new worktree, NAME-2, NAME-3, …"
    )
    sdlc.add_argument(
        "--best-of", type=int, metavar="N",
        help="run one SPEC as N candidates in worktrees NAME-1 … NAME-N, then `adw compare` and `adw pick` one",
    )
    sdlc.add_argument("--agents", type=_names, metavar="A,B,…",
                      help="with --best-of: the build phase's agent of each candidate (repeated when shorter)")
    sdlc.add_argument("--models", type=_names, metavar="M,N,…",
                      help="with --best-of: the build phase's model of each candidate (repeated when shorter)")
    add_json_flag(sdlc)
    sdlc.set_defaults(handler=_sdlc)

    resume = subparsers.add_parser("resume")
    resume.add_argument("id", help="a workflow id")
    _add_executor_flags(resume)
    add_json_flag(resume)
    resume.set_defaults(handler=_resume)

    say = subparsers.add_parser(
        "say", help="send a follow-up to the agent of a task that ran: it continues its session in the worktree"
    )
    say.add_argument("id", help="a workflow id")
    say.add_argument("message", help="what the agent should do next")
    say.add_argument(
        "--task", metavar="T", help="the task whose agent to continue (default: the last one with a session)"
    )
    _add_executor_flags(say)
    add_json_flag(say)
    say.set_defaults(handler=_say)

    demo = subparsers.add_parser(
        "demo",
        description="Creates a small Python repository with three specs and runs `adw sdlc` on all of them "
        "with the built-in agents (no LLM needed), then shows the commits and merge previews.",
    )
    demo.add_argument("path", nargs="?", help="folder for the demo repository (default: a temporary one)")
    add_json_flag(demo)
    demo.set_defaults(handler=_demo)


def _add_executor_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--executor",
        choices=get_args(ExecutorKind),
        help="where agent phases run: local (this process) or ray (a Ray cluster; needs `pip install 'adw[ray]'`); "
        "default: [tool.adw] executor",
    )
    parser.add_argument(
        "--address",
        metavar="ADDR",
        help="with --executor ray: the cluster, auto, HOST:6379 or ray://HOST:10001 (default: [tool.adw] address)",
    )


# -- handlers ------------------------------------------------------------------------------------------


async def _sdlc(args: argparse.Namespace) -> int:
    if bool(args.specs) == bool(args.issue):
        raise AdwError(
            "give either SPEC files or --issue",
            "e.g. `adw sdlc specs/a.md specs/b.md`, or `adw sdlc --issue 123` for an issue of the repository's forge",
        )
    base = Path(args.cwd)
    repo = await Repo.discover(base)
    _check_best_of(args)
    engine = await open_engine(base, max_agents=args.max_agents, executor=args.executor, address=args.address)
    specs = [base / spec for spec in args.specs]
    if args.best_of is not None:
        return await _best_of(args, engine, repo.root, specs[0])
    provider = None
    existing: Existing = "again" if args.again else "refuse"
    try:
        # With --pr, a missing login fails now, before any agent runs.
        provider = await connect(repo.root, engine.config.forge) if args.issue or args.pr else None
        try:
            if args.issue and provider is not None:
                spec, workflows = await issue_workflows(
                    repo, provider, args.issue, engine.config, existing=existing, store=engine.store
                )
                specs = [spec]
            else:
                workflows = await sdlc_workflows(repo.root, specs, engine.config, existing=existing, store=engine.store)
        except WorktreeExistsError as exc:
            if not args.resume:
                raise _refusal(args, exc) from None
            resumed = _resumable(args, engine, exc)
            there = {Path(found.spec) for found in exc.existing}
            others = [spec for spec in specs if spec.resolve() not in there]
            fresh = await sdlc_workflows(repo.root, others, engine.config, store=engine.store) if others else []
            _announce_resume(args, resumed)
            workflows = resumed + fresh
        if provider is not None and not args.pr:
            await provider.aclose()
            provider = None
    except BaseException:
        engine.close()
        if provider is not None:
            await provider.aclose()
        raise
    return await _run(args, engine, workflows, provider)


def _check_best_of(args: argparse.Namespace) -> None:
    if args.best_of is None:
        if args.agents or args.models:
            raise AdwError("--agents and --models choose the candidates of --best-of N", "add --best-of N")
        return
    if len(args.specs) != 1 or args.resume or args.again or args.issue or args.pr:
        raise AdwError("--best-of runs one spec, as new candidates",
                       "pass one SPEC file, without --resume, --again, --issue or --pr (`adw pr` the one you pick)")


async def _best_of(args: argparse.Namespace, engine: Engine, root: Path, spec: Path) -> int:
    try:
        manager = await Worktrees.open(root)
        existing = {info.name for info in await manager.all()}
        existing |= {child.name for child in manager.root.iterdir()} if manager.root.is_dir() else set()
        workflows = best_of_workflows(root, spec, engine.config, args.best_of, args.agents, args.models, existing)
    except BaseException:
        engine.close()
        raise
    group = workflows[0].best_of.group if workflows[0].best_of else ""
    if not args.json:
        for wf in workflows:
            print(f"candidate {wf.best_of.number if wf.best_of else '?'}: {wf.name} "
                  f"(build by {wf.task('build').agent})")
    code = await _run(args, engine, workflows)
    if code == 1 and any(wf.state is TaskState.SUCCEEDED for wf in workflows):
        code = 0  # a candidate that fails is an answer of the comparison, not a failure of the run
    if not args.json:
        print(f"\ncompare them: adw compare {group}    pick one: adw pick {group} N")
    return code


def _names(text: str) -> list[str]:
    """A comma-separated list (`--agents claude,codex`)."""
    return [name.strip() for name in text.split(",")]


async def _resume(args: argparse.Namespace) -> int:
    engine = await open_engine(args.cwd, executor=args.executor, address=args.address)
    try:
        workflow = _prepare_resume(args, engine, args.id)
    except BaseException:
        engine.close()
        raise
    _announce_resume(args, [workflow])
    return await _run(args, engine, [workflow])


async def _say(args: argparse.Namespace) -> int:
    engine = await open_engine(args.cwd, executor=args.executor, address=args.address)
    try:
        workflow = engine.prepare_follow_up(args.id, args.task, FollowUp(message=args.message))
    except BaseException:
        engine.close()
        raise
    task = next(task for task in workflow.tasks if task.follow_up is not None)
    if not args.json:
        print(f"following up {task.id} ({task.agent}) of {workflow.name} [{workflow.id}]", flush=True)
    return await _run(args, engine, [workflow], printer=lambda: print_transcript(engine, workflow.id, task.id))


async def _demo(args: argparse.Namespace) -> int:
    root = _demo_root(args.cwd, args.path)
    specs = await create_demo_repo(root)
    if not args.json:
        print(f"demo repository: {root}")
        print(f"specs: {', '.join(spec.name for spec in specs)}\n")
    engine = await open_engine(root)
    return await _run(args, engine, await sdlc_workflows(root, specs, engine.config))


def _demo_root(cwd: str, path: str | None) -> Path:
    return Path(cwd, path).resolve() if path else Path(tempfile.mkdtemp(prefix="adw-demo-")) / "calc"


async def _run(
    args: argparse.Namespace,
    engine: Engine,
    workflows: list[Workflow],
    provider: Provider | None = None,
    printer: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> int:
    """Run the workflows, printing what `printer` prints (default: a line per task start and end); with
    `provider` (`--pr`), then open each one's pull request."""
    show = printer or (lambda: _print_progress(engine, workflows))
    printing = None if args.json else asyncio.create_task(show())
    attention = Attention(engine, workflows, engine.config.notify)
    attending = asyncio.create_task(attention.run())
    try:
        await preflight_workflows(workflows)  # a missing CLI or login fails now, not after the agents' retries
        with _CtrlC(engine, workflows) as ctrl_c:
            await engine.run_all(workflows)  # updates `workflows` in place, also when stopped
        opened: tuple[list[dict[str, Any]], str, bool] | None = None
        if provider is not None and not ctrl_c.pressed:
            opened = await pull_requests(provider, workflows)
    finally:
        if printing is not None:
            await asyncio.sleep(0)  # let the printer take the last events
            printing.cancel()
        attention.stop()
        await attending
        engine.close()
        if provider is not None:
            await provider.aclose()
    result: dict[str, Any] = {"workflows": workflows}
    text = _outcome_text(workflows)
    if opened is not None:
        result["pull_requests"], prs_text, _ = opened
        text += "\n\n" + prs_text
    emit(args, result, text)
    if ctrl_c.pressed:
        left = [wf for wf in workflows if wf.state is not TaskState.SUCCEEDED]
        print("adw: interrupted", file=sys.stderr)
        for wf in left:
            print(f"  `adw resume {wf.id}` continues {wf.name}", file=sys.stderr)
        return 130
    all_opened = opened is None or opened[2]
    return 0 if all_opened and all(wf.state is TaskState.SUCCEEDED for wf in workflows) else 1


class _CtrlC:
    """Ctrl-C while workflows run. The first stops the agents through the engine's cancel path (SIGINT, SIGTERM,
    SIGKILL to each agent's process group, `stop_grace` apart); their tasks end `interrupted`, resumable. A
    second one stops waiting: the running tasks are cancelled, which kills their process groups at once."""

    def __init__(self, engine: Engine, workflows: list[Workflow]) -> None:
        self.engine = engine
        self.workflows = workflows
        self.pressed = 0

    def __enter__(self) -> _CtrlC:
        self._main = asyncio.current_task()
        self._previous = signal.getsignal(signal.SIGINT)
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGINT)
        signal.signal(signal.SIGINT, self._previous)
        if exc_type is asyncio.CancelledError and self.pressed > 1 and self._main is not None:
            self._main.uncancel()  # our own hard stop: the workflows are stored as interrupted
            return True
        return False

    def _on_sigint(self) -> None:
        self.pressed += 1
        if self.pressed == 1:
            print("adw: stopping the agents (Ctrl-C again to kill them)", file=sys.stderr, flush=True)
            for workflow in self.workflows:
                self.engine.cancel(workflow.id, reason="interrupted by Ctrl-C", state=TaskState.INTERRUPTED)
        elif self._main is not None:
            self._main.cancel()


# -- helpers -------------------------------------------------------------------------------------------


def _agent_count(text: str) -> int:
    """`--max-agents`: the bounds of `[tool.adw.agents] max_agents`."""
    if not text.isdigit() or not 1 <= int(text) <= MAX_AGENTS:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to {MAX_AGENTS}, got {text!r}")
    return int(text)


def _shown(args: argparse.Namespace, path: str | Path) -> str:
    """A spec as the user would type it: relative to the folder `adw` runs in when it is inside."""
    resolved, here = Path(path).resolve(), Path(args.cwd).resolve()
    return str(resolved.relative_to(here) if resolved.is_relative_to(here) else resolved)


def _sdlc_command(flag: str, specs: list[str]) -> str:
    return f"`adw sdlc {flag} {' '.join(shlex.quote(spec) for spec in specs)}`"


def _targets(args: argparse.Namespace) -> list[str]:
    """What `adw sdlc` was asked to run, as its arguments: the specs, or `--issue N`."""
    return ["--issue", args.issue] if args.issue else list(args.specs)


def _existing_worktrees(
    args: argparse.Namespace, found: list[ExistingWorktree], detail: Callable[[ExistingWorktree], str]
) -> str:
    return "; ".join(f"{_shown(args, e.spec)} already has a worktree: {e.path}{detail(e)}" for e in found)


def _remove_first(found: list[ExistingWorktree]) -> str:
    commands = ", ".join(f"`adw worktree remove {shlex.quote(e.worktree)}`" for e in found)
    return f"or remove the worktree first: {commands}"


def _refusal(args: argparse.Namespace, exc: WorktreeExistsError) -> AdwError:
    """The core's refusal in command-line words, with the flags that choose what to do."""

    def ran(e: ExistingWorktree) -> str:
        if e.workflow_id and e.workflow_state:
            return f" (workflow {e.workflow_id}, {e.workflow_state.value})"
        return " (no ADW workflow ran there)"

    found = exc.existing
    them = "it" if len(found) == 1 else "them"
    choices = []
    if any(e.workflow_state not in (None, TaskState.SUCCEEDED) for e in found):
        workflows = "its workflow" if len(found) == 1 else "their workflows"
        choices.append(f"{_sdlc_command('--resume', _targets(args))} continues {workflows}")
    choices += [f"{_sdlc_command('--again', _targets(args))} runs {them} in a new worktree", _remove_first(found)]
    return AdwError(_existing_worktrees(args, found, ran), "; ".join(choices))


def _resumable(args: argparse.Namespace, engine: Engine, exc: WorktreeExistsError) -> list[Workflow]:
    """`adw sdlc --resume`: the workflows that ran in the existing worktrees, all ready before any starts."""
    lost = [e for e in exc.existing if e.workflow_id is None]
    if lost:
        again = _sdlc_command("--again", [_shown(args, e.spec) for e in lost])
        raise AdwError(
            _existing_worktrees(args, lost, lambda _: "; no ADW workflow ran there to resume"),
            f"{again} runs {'it' if len(lost) == 1 else 'them'} in a new worktree; {_remove_first(lost)}",
        )
    return [_prepare_resume(args, engine, e.workflow_id) for e in exc.existing if e.workflow_id]


def _prepare_resume(args: argparse.Namespace, engine: Engine, workflow_id: str) -> Workflow:
    try:
        return engine.prepare_resume(workflow_id)
    except NothingToResumeError as exc:
        spec = engine.get(workflow_id).spec
        again = _sdlc_command("--again", [_shown(args, spec)]) if spec else "`adw sdlc --again SPEC`"
        raise AdwError(exc.message, f"{again} runs its spec again in a new worktree") from None


def _announce_resume(args: argparse.Namespace, workflows: list[Workflow]) -> None:
    if args.json:
        return
    for wf in workflows:
        left = [task.id for task in wf.tasks if task.state is TaskState.PENDING]
        print(f"resuming {wf.name} [{wf.id}]: {len(left)} task(s) with the current configuration: {', '.join(left)}")


async def _print_progress(engine: Engine, workflows: list[Workflow]) -> None:
    """One line per task start and end, and per word of the engine on a whole workflow (the agent cap on a
    cluster), with the time since the start."""
    names = {wf.id: wf.name for wf in workflows}
    width = max(len(name) for name in names.values())
    started = time.monotonic()
    async with engine.subscribe(types=[TaskStarted, TaskFinished, Progress]) as events:
        async for event in events:
            if event.workflow_id not in names or (isinstance(event, Progress) and event.task_id is not None):
                continue
            name = names[event.workflow_id]
            prefix = f"{time.monotonic() - started:7.2f}s  {name:<{width}}  {event.task_id or '':<13}"
            if isinstance(event, Progress):
                print(f"{prefix} {event.message}", flush=True)
            elif isinstance(event, TaskStarted):
                retry = f" (attempt {event.attempt})" if event.attempt > 1 else ""
                print(f"{prefix} started {event.agent}{retry}", flush=True)
            elif isinstance(event, TaskFinished):
                detail = event.summary or event.reason
                retry = f"; retrying in {event.retry_in:g}s" if event.retry_in is not None else ""
                print(f"{prefix} {event.state.value}{': ' + detail if detail else ''}{retry}", flush=True)


def _outcome_text(workflows: list[Workflow]) -> str:
    lines = [""]
    for wf in workflows:
        lines.append(f"{wf.name} [{wf.id}]: {wf.state.value}" + (f" — {wf.reason}" if wf.reason else ""))
        if wf.worktree and wf.cwd != wf.repo:
            lines.append(f"  worktree  {wf.cwd}")
        commit = next((t for t in wf.tasks if t.id == "commit"), None)
        if commit is not None and commit.outputs.get("commit"):
            lines.append(
                f"  commit    {commit.outputs['commit'][:12]} on {wf.task('worktree').outputs.get('branch')}"
            )
        preview = next((t for t in wf.tasks if t.id == "merge-preview"), None)
        if preview is not None and preview.summary:
            lines.append(f"  merge     {preview.summary}")
        # New findings first; the ones the base commit already had are information, so they come after.
        findings = [(t.id, f.severity.value, f) for t in wf.tasks for f in t.findings]
        findings += [
            (t.id, "pre-existing", Finding.model_validate(f))
            for t in wf.tasks
            for f in t.outputs.get("baseline", {}).get("pre_existing", [])
        ]
        for task_id, label, finding in findings[:10]:
            where = f"{finding.path}:{finding.line}" if finding.line else finding.path
            first_line = (finding.message.strip().splitlines() or [""])[0]
            lines.append(f"  {label:<8}  {where}  {first_line}  [{task_id}]")
        if len(findings) > 10:
            lines.append(f"  … {len(findings) - 10} more finding(s): `adw status {wf.id} --json`")
    if workflows and workflows[0].run_id:
        lines += ["", f"who ran when: `adw timeline {workflows[0].run_id}` (--html FILE for a picture)"]
    return "\n".join(lines)
