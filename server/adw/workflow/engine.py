"""The scheduler: runs the task graphs of many workflows at once on one asyncio loop.

A task starts when every dependency succeeded (AND); a failure skips its dependents while independent tasks
go on. Agent tasks share one global cap (`max_agents`); each attempt has a wall-clock and an inactivity
timeout; failures the agent marks retryable are retried with exponential backoff. A language server embeds
an `Engine` and reads `subscribe()` and `workflows()`; the CLI does the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from collections.abc import Collection, Mapping
from pathlib import Path

import psutil

from adw.config import MAX_AGENTS, AdwConfig, ExecutorKind, load_config, phase_configs
from adw.errors import AdwError
from adw.git.checkpoints import Checkpoint, Checkpoints
from adw.git.repo import Repo
from adw.process import AgentTree, stop_tree, task_marker
from adw.workflow.agent import AgentFactory, CancelToken
from adw.workflow.events import (
    EventBus,
    EventType,
    PermissionChoice,
    Placed,
    Progress,
    Subscription,
    TaskEvents,
    TaskFinished,
    TaskStarted,
    WorkflowFinished,
    WorkflowStarted,
)
from adw.workflow.executor import Executor, LocalExecutor, Phase, open_executor
from adw.workflow.judge import CHANGED_FILES_ONLY, base_run, changed_files, compare, judged
from adw.workflow.models import (
    BEST_OF_PHASE,
    AgentResult,
    Attempt,
    Finding,
    FollowUp,
    Severity,
    Task,
    TaskState,
    Usage,
    Workflow,
)
from adw.workflow.scope import Window, out_of_scope, restore, write_scope
from adw.workflow.store import Store

_AGENT_MEMORY = 512 * 1024**2  # what one agent CLI (a Node or native binary plus its tools) holds
_STEP_TIMEOUT = 600.0
_REQUEST_POLL = 0.25
_BLOCKING = (TaskState.FAILED, TaskState.CANCELLED, TaskState.SKIPPED, TaskState.INTERRUPTED)


def default_max_agents() -> int:
    """Agents mostly wait on remote APIs, so several per core; memory bounds them, and so do rate limits."""
    cores = os.cpu_count() or 1
    by_memory = psutil.virtual_memory().available // _AGENT_MEMORY
    return int(max(1, min(MAX_AGENTS, cores * 4, by_memory)))


def new_workflow_id(name: str) -> str:
    slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")[:24] or "wf"
    return f"{slug}-{secrets.token_hex(3)}"


def join_run(workflows: Collection[Workflow]) -> str:
    """Make `workflows` one run (what `adw timeline` draws): each that has no run yet joins a new one. A resumed
    workflow stays in the run it first started in. Returns the new run's id."""
    run_id = f"run-{secrets.token_hex(4)}"
    for workflow in workflows:
        workflow.run_id = workflow.run_id or run_id
    return run_id


class UnknownWorkflowError(AdwError):
    pass


class NothingToResumeError(AdwError):
    """Every task of the workflow succeeded."""


class Engine:
    def __init__(
        self,
        store: Store | None = None,
        config: AdwConfig | None = None,
        *,
        agents: Mapping[str, AgentFactory],
        max_agents: int | None = None,
    ) -> None:
        """`agents`: every kind of agent a task may name (`Task.agent`), by name; the engine knows no other.
        Agent phases run on the executor the configuration names; steps always run here."""
        self.config = config or AdwConfig()
        self.settings = self.config.agents
        self._executor = open_executor(self.config)
        self._executor_choice = (self.config.executor, self.config.address)
        self._executor_chosen: tuple[ExecutorKind, str | None] | None = None  # the caller's, over the configuration
        self._local = LocalExecutor()
        self.store = store
        self.bus = EventBus()
        if store is not None:
            self.bus.add_sink(store.record_event)
        if max_agents is not None:
            _check_max_agents(max_agents)
        self._chosen_cap = max_agents  # given by the caller, kept over reloads; else the configuration's
        self._cluster_slots: int | None = None  # the agent slots of the executor's cluster, once read
        self._slots = AgentSlots(self._cap())
        self._factories = dict(agents)
        self._workflows: dict[str, Workflow] = {}
        self._tokens: dict[tuple[str, str], CancelToken] = {}
        self._checkpoint_locks: dict[str, asyncio.Lock] = {}
        self._windows: dict[str, dict[str, Window]] = {}  # workflow → its checkpointed tasks now running
        self._active = 0
        self._watcher: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str] = ".",
        *,
        agents: Mapping[str, AgentFactory],
        max_agents: int | None = None,
        executor: ExecutorKind | None = None,
        address: str | None = None,
    ) -> Engine:
        """An engine on the repository containing `path`, with its configuration and shared store, after
        recovering from any crashed run. `executor` and `address` override the configuration's."""
        repo = await Repo.discover(path)
        config = load_config(repo.main_root, repo.config_cache)
        chosen = {"executor": executor, "address": address}
        config = config.model_copy(update={key: value for key, value in chosen.items() if value is not None})
        engine = cls(Store.for_common_dir(repo.common_dir), config, max_agents=max_agents, agents=agents)
        await engine.recover()
        return engine

    @property
    def max_agents(self) -> int:
        """The cap on agent tasks running at once, shared by every workflow of this engine."""
        return self._slots.limit

    def set_max_agents(self, limit: int) -> None:
        """Change the cap, also while tasks run: a raise starts waiting agents at once; a cut lets running
        agents finish and starts no other until fewer than `limit` run."""
        _check_max_agents(limit)
        self._chosen_cap = limit
        self._slots.resize(self._cap())

    def _user_cap(self) -> int | None:
        """The cap the user set: the caller's, else the configuration's `max_agents`."""
        return self._chosen_cap or self.settings.max_agents

    def _cap(self) -> int:
        """The user's cap; on a cluster, its agent slots unless the user's is lower (MAX_AGENTS bounds one
        machine, not a cluster); else what this machine's cores and memory allow."""
        chosen = self._user_cap()
        if self._cluster_slots is not None:
            return min(chosen, self._cluster_slots) if chosen else self._cluster_slots
        return chosen or default_max_agents()

    async def _fit_cap(self, workflow: Workflow) -> None:
        """Before a run: on an executor with slots of its own (a Ray cluster), cap the agents by them, and say so
        in the workflow's events."""
        try:
            slots = await self._executor.agent_slots()
        except AdwError as exc:  # its phases will fail with the same message
            self._publish(Progress(workflow_id=workflow.id, message=f"agent cap {self.max_agents}: {exc.message}"))
            return
        if slots is None:
            return
        self._cluster_slots = slots.total
        self._slots.resize(self._cap())
        chosen = self._user_cap()
        message = f"agent cap {self.max_agents}: {slots.where} has {slots.total} agent slot(s), {slots.free} free"
        if chosen and chosen < slots.total:
            message += f"; max_agents {chosen} keeps it lower"
        self._publish(Progress(workflow_id=workflow.id, message=message))

    def reconfigure(self, config: AdwConfig) -> None:
        """A changed configuration (the language server reloads it when its files change): workflows made
        from now on use it; tasks already made keep the phase settings they were made with. Its agent cap
        applies unless the caller set one. A new executor that cannot open (Ray missing) raises its AdwError after
        the rest applied, and the one that works stays."""
        self.config, self.settings = config, config.agents
        self._slots.resize(self._cap())
        self._open_executor()

    def choose_executor(self, executor: ExecutorKind | None, address: str | None = None) -> None:
        """Run agent phases started from now on with `executor` at `address` (each None: the configuration's),
        over the configuration, also after it reloads: the editor's `adw.executor` setting. Raises AdwError,
        changing nothing, while agent phases of this engine run on another executor, or when it cannot open."""
        chosen = (executor, address) if executor is not None else None
        before = self._executor_chosen
        self._executor_chosen = chosen
        try:
            self._open_executor(refuse_while_running=True)
        except AdwError:
            self._executor_chosen = before
            raise

    def _open_executor(self, refuse_while_running: bool = False) -> None:
        """Switch to the executor chosen (else configured) if it is not the one open."""
        kind, address = self._executor_chosen or (self.config.executor, None)
        wanted = (kind, address or self.config.address)
        if wanted == self._executor_choice:
            return
        running = self.agent_load()[0]
        if refuse_while_running and running:
            current = self._executor_choice[0]
            raise AdwError(
                f"{running} agent phase(s) run on the {current} executor now",
                "wait for them to end, or start with the same executor",
                f"wait for them to end, or set adw.executor to \"{current}\" meanwhile",
            )
        executor = open_executor(self.config.model_copy(update={"executor": wanted[0], "address": wanted[1]}))
        self._executor.close()
        self._executor, self._executor_choice = executor, wanted
        self._cluster_slots = None
        self._slots.resize(self._cap())

    def answer_permission(self, request_id: str, choice: PermissionChoice, by: str) -> bool:
        """Answer an agent's pending permission question (a `PermissionAsked` event); False when it is no longer
        pending: answered by someone else, timed out, or its turn ended."""
        return self.bus.answer(request_id, choice, by)

    # -- reading state ---------------------------------------------------------------------------------------

    def subscribe(
        self, workflow_id: str | None = None, types: Collection[EventType] | None = None
    ) -> Subscription:
        """Events from now on: `async with engine.subscribe() as events: async for event in events: …`."""
        return self.bus.subscribe(workflow_id, types)

    def workflows(self) -> list[Workflow]:
        """The live state of the workflows this engine has run, newest first."""
        return sorted(self._workflows.values(), key=lambda wf: wf.created_at, reverse=True)

    def agent_load(self) -> tuple[int, int]:
        """Agent tasks of this engine's runs that are running now, and those ready to run but waiting for a
        slot (their dependencies met, the `max_agents` cap reached)."""
        running = waiting = 0
        for workflow_id, task_id in self._tokens:
            task = self._workflows[workflow_id].task(task_id)
            if task.kind == "agent":
                running += task.state is TaskState.RUNNING
                waiting += task.state is TaskState.PENDING
        return running, waiting

    def get(self, workflow_id: str) -> Workflow:
        workflow = self._workflows.get(workflow_id) or (self.store.load(workflow_id) if self.store else None)
        if workflow is None:
            raise UnknownWorkflowError(
                f"no workflow {workflow_id!r}", "list the workflows of this repository with `adw status`",
                "pick one in the Workflows view",
            )
        return workflow

    # -- running ---------------------------------------------------------------------------------------------

    async def run(self, workflow: Workflow) -> Workflow:
        """Run every pending task of `workflow` to an end state; returns it when nothing is left to run."""
        self._workflows[workflow.id] = workflow
        if workflow.run_id is None:
            join_run([workflow])
        workflow.state = TaskState.RUNNING
        workflow.started_at = workflow.started_at or time.time()
        workflow.finished_at = None
        workflow.reason = ""
        self._publish(WorkflowStarted(workflow_id=workflow.id, name=workflow.name))
        self._save(workflow)
        self._active += 1
        if self.store is not None and self._watcher is None:
            self._watcher = asyncio.create_task(self._watch_requests())
        try:
            await self._fit_cap(workflow)
            await self._drive(workflow)
        except asyncio.CancelledError:  # the orchestrator itself is stopping: resumable later
            self._end(workflow, TaskState.INTERRUPTED, "the ADW process stopped")
            raise
        finally:
            self._active -= 1
            if self._active == 0 and self._watcher is not None:
                self._watcher.cancel()
                self._watcher = None
        self._end(workflow, *_outcome(workflow))
        return workflow

    def _end(self, workflow: Workflow, state: TaskState, reason: str) -> None:
        workflow.state, workflow.reason = state, reason
        workflow.finished_at = time.time()
        self._publish(WorkflowFinished(workflow_id=workflow.id, state=workflow.state, reason=workflow.reason))
        self._save(workflow)

    async def run_all(self, workflows: Collection[Workflow]) -> list[Workflow]:
        join_run(workflows)
        return list(await asyncio.gather(*(self.run(wf) for wf in workflows)))

    async def run_of(self, ident: str) -> list[Workflow]:
        """The workflows of a run, given its id or the id (or a unique prefix) of one of them: the live state
        of those this engine runs, the stored state of the others, oldest first. The store is read off the
        event loop (a language server answers on it)."""
        stored = await asyncio.to_thread(self.store.run, ident) if self.store is not None else []
        members = {wf.id: wf for wf in stored}
        members |= {wf.id: wf for wf in self._workflows.values() if ident in (wf.id, wf.run_id)}
        if not members:
            found = self.get(ident)  # a unique prefix, or the error that lists where to look
            members[found.id] = found
        runs = {wf.run_id for wf in members.values() if wf.run_id is not None}
        members |= {wf.id: wf for wf in self._workflows.values() if wf.run_id in runs}
        return sorted((self._workflows.get(wid, wf) for wid, wf in members.items()), key=lambda wf: wf.created_at)

    async def resume(self, workflow_id: str) -> Workflow:
        """Run again every task of a stored workflow that did not succeed (see `prepare_resume`)."""
        return await self.run(self.prepare_resume(workflow_id))

    def prepare_resume(self, workflow_id: str) -> Workflow:
        """A stored workflow made ready for `run`: every task that did not succeed is pending again, and each
        of those that is an agent phase (`[tool.adw.phases]`) takes the current configuration of its phase,
        agent included. Succeeded tasks are kept as they are. Nothing runs yet, so a caller can say what will
        run (the pending tasks) and start several at once. Raises AdwError when the workflow is running or
        nothing is left to run."""
        workflow = self._idle(workflow_id)
        if all(task.state is TaskState.SUCCEEDED and not task.stale for task in workflow.tasks):
            raise NothingToResumeError(
                f"workflow {workflow.id} already succeeded: nothing to resume",
                "to do its work once more, start it again in a new worktree",
            )
        phases = phase_configs(self.config)
        for task in workflow.tasks:
            if task.state is TaskState.SUCCEEDED and not task.stale:
                continue
            task.state, task.reason, task.stale = TaskState.PENDING, "", False
            current = phases.get(task.phase) if task.kind == "agent" and task.config is not None else None
            if current is not None and workflow.best_of is not None and task.phase == BEST_OF_PHASE:
                current = workflow.best_of.build_config(current)  # a candidate keeps its own agent and model
            if current is not None:
                task.config, task.agent = current, current.agent
        return workflow

    def _idle(self, workflow_id: str) -> Workflow:
        """The stored workflow, unless this or another live process is running it."""
        workflow = self.get(workflow_id)
        if workflow.id in self._workflows and workflow.state is TaskState.RUNNING:
            raise AdwError(f"workflow {workflow.id} is running", "wait for it or cancel it first")
        if self.store is not None:
            owner = self.store.owner_of(workflow.id)
            if (
                workflow.state is TaskState.RUNNING
                and owner is not None
                and owner.alive()
                and owner != self.store.owner
            ):
                raise AdwError(
                    f"workflow {workflow.id} is running in process {owner.pid}",
                    f"wait for it, or stop it with `adw cancel {workflow.id}`",
                    "wait for it, or cancel it in the Workflows view",
                )
        return workflow

    def prepare_follow_up(self, workflow_id: str, task_id: str | None, follow_up: FollowUp) -> Workflow:
        """A stored workflow made ready for `run` to send `follow_up` to the agent of `task_id` (default: the
        last task whose agent left a session), continuing that session in the same worktree as a new attempt,
        checkpointed before and after. Every task that depends on it and already succeeded is marked stale, for
        `adw resume` to run again. Raises AdwError when the workflow is running, the task is unknown, or its
        agent keeps no session."""
        # A copy: nothing changes unless it runs (a caller's preflight may still refuse it).
        workflow = self._idle(workflow_id).model_copy(deep=True)
        if not follow_up.message.strip():
            raise AdwError("the follow-up message is empty", "say what the agent should do")
        task = self._follow_up_task(workflow, task_id)
        stale = _dependents(workflow, task.id)
        for other in stale:
            other.stale = other.state is TaskState.SUCCEEDED
        task.state, task.reason, task.follow_up = TaskState.PENDING, "", follow_up
        return workflow

    def _follow_up_task(self, workflow: Workflow, task_id: str | None) -> Task:
        if task_id is None:
            with_session = [task for task in workflow.tasks if task.session is not None]
            if not with_session:
                raise AdwError(
                    f"no task of workflow {workflow.id} has an agent session to continue",
                    "follow-ups need an LLM agent (claude, codex, aider or acp) that has run a task",
                )
            return with_session[-1]
        if task_id not in {task.id for task in workflow.tasks}:
            raise AdwError(
                f"workflow {workflow.id} has no task {task_id!r}",
                f"its tasks are: {', '.join(task.id for task in workflow.tasks)}",
            )
        task = workflow.task(task_id)
        if task.session is None:
            raise AdwError(
                f"task {task.id} (agent {task.agent}) has no agent session to continue",
                "follow-ups need an LLM agent (claude, codex, aider or acp) that has run the task; "
                f"tasks with one: {', '.join(t.id for t in workflow.tasks if t.session) or 'none'}",
            )
        return task

    def cancel(
        self,
        workflow_id: str,
        task_id: str | None = None,
        reason: str = "cancelled by user",
        state: TaskState = TaskState.CANCELLED,
    ) -> bool:
        """Cancel one task or the whole workflow run by this engine; its running and pending tasks end in `state`
        (`INTERRUPTED` when the user stops ADW itself, e.g. Ctrl-C: resumable as it was). False when nothing was
        left to cancel."""
        workflow = self._workflows.get(workflow_id)
        if workflow is None:
            return False
        if task_id and task_id not in {task.id for task in workflow.tasks}:
            raise AdwError(
                f"workflow {workflow_id} has no task {task_id!r}",
                f"its tasks are: {', '.join(task.id for task in workflow.tasks)}",
            )
        tasks = [workflow.task(task_id)] if task_id else workflow.tasks
        hit = False
        for task in tasks:
            token = self._tokens.get((workflow_id, task.id))
            if token is not None:
                token.cancel(reason, state)
                hit = True
            elif task.state is TaskState.PENDING:
                self._finish(workflow, task, state, reason)
                hit = True
        if hit:
            self._save(workflow)
        return hit

    async def recover(self) -> list[Workflow]:
        """After a crash: stop the agents it left behind and mark what it was running as interrupted."""
        if self.store is None:
            return []
        # What an agent started survives its leader, so each recorded agent's whole tree is looked for.
        stray = self.store.stray_processes()
        trees = [AgentTree(p.pid, p.create_time, task_marker(p.workflow_id, p.task_id)) for p in stray]
        await asyncio.gather(*(stop_tree(tree, self.settings.stop_grace) for tree in trees))
        self.store.forget_processes(stray)
        orphans = self.store.orphaned()
        for workflow in orphans:
            for task in workflow.tasks:
                if task.state is TaskState.RUNNING:
                    task.state, task.reason = TaskState.INTERRUPTED, "the ADW process running it stopped"
                    task.finished_at = time.time()
                    for attempt in task.attempts:
                        if attempt.state is TaskState.RUNNING:
                            attempt.state = TaskState.INTERRUPTED
            workflow.state, workflow.reason = TaskState.INTERRUPTED, "the ADW process running it stopped"
            self.store.save(workflow)
        return orphans

    def close(self) -> None:
        self._executor.close()
        if self.store is not None:
            self.store.close()

    # -- the graph -------------------------------------------------------------------------------------------

    async def _drive(self, workflow: Workflow) -> None:
        by_id = {task.id: task for task in workflow.tasks}
        unknown = sorted({dep for task in workflow.tasks for dep in task.deps} - by_id.keys())
        if unknown:
            raise ValueError(f"workflow {workflow.id}: tasks depend on unknown tasks {unknown}")
        dependents: dict[str, list[Task]] = {task.id: [] for task in workflow.tasks}
        for task in workflow.tasks:
            for dep in task.deps:
                dependents[dep].append(task)
        running: dict[asyncio.Task[None], Task] = {}

        def settle(candidates: list[Task]) -> None:
            """Start the candidates whose dependencies all succeeded, skip those behind a failure (a skip
            makes its own dependents candidates too). Only tasks next to a change are looked at."""
            active = {task.id for task in running.values()}
            for task in candidates:  # grows while iterated
                if task.state is not TaskState.PENDING or task.id in active:
                    continue
                states = {dep: by_id[dep].state for dep in task.deps}
                blocked = [f"{dep} {state.value}" for dep, state in states.items() if state in _BLOCKING]
                if blocked:
                    self._finish(workflow, task, TaskState.SKIPPED, "dependency " + ", ".join(blocked))
                    candidates.extend(dependents[task.id])
                elif all(state is TaskState.SUCCEEDED for state in states.values()):
                    running[asyncio.create_task(self._run_task(workflow, task))] = task
                    active.add(task.id)

        try:
            settle(list(workflow.tasks))
            while True:
                if not running:
                    # A task cancelled while pending has no job to report it: a full pass finds what follows.
                    settle(list(workflow.tasks))
                    if not running:
                        break
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                candidates: list[Task] = []
                for job in done:
                    candidates.extend(dependents[running.pop(job).id])
                    job.result()
                settle(candidates)
            for task in workflow.tasks:
                if task.state is TaskState.PENDING:  # only a dependency cycle leaves one here
                    self._finish(workflow, task, TaskState.SKIPPED, "dependency cycle")
        finally:
            for job in running:
                job.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def _run_task(self, workflow: Workflow, task: Task) -> None:
        key = (workflow.id, task.id)
        token = self._tokens[key] = CancelToken()
        config = task.config
        retries = config.retries if config else 0
        try:
            for number in range(retries + 1):
                if task.kind == "agent" and self._slots.used >= self._slots.limit:
                    task.queued_at = time.time()
                    self._save(workflow, task)  # it waits for a slot: readers in other processes see it
                if not await self._acquire(task, token):
                    self._finish(workflow, task, token.state, token.reason)
                    return
                try:
                    attempt, result = await self._attempt(workflow, task, token)
                finally:
                    if task.kind == "agent":
                        self._slots.release()
                state, reason = _judge(result, token)
                attempt.state, attempt.reason, attempt.finished_at = state, reason, time.time()
                attempt.retryable = state is TaskState.FAILED and result.retryable and not token.requested
                if attempt.retryable and number < retries and config is not None:
                    delay = config.retry_backoff * 2**number
                    self._publish(
                        TaskFinished(
                            workflow_id=workflow.id,
                            task_id=task.id,
                            state=state,
                            attempt=attempt.number,
                            reason=reason,
                            retry_in=delay,
                        )
                    )
                    self._save(workflow, task)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):
                            await token.wait()
                    continue
                if attempt.retryable and number > 0:  # the last retry failed too: say so, not "retrying"
                    reason = f"gave up after {number + 1} attempts: {reason}"
                task.summary, task.findings = result.summary, result.findings
                task.outputs = {**task.outputs, **result.outputs}
                # A follow-up adds to the change the task made before; a fresh run replaces it.
                task.files_changed = (
                    sorted({*task.files_changed, *result.files_changed})
                    if task.follow_up is not None
                    else result.files_changed
                )
                task.session = result.session or task.session
                task.follow_up, task.stale = None, False
                self._finish(workflow, task, state, reason, attempt.number)
                return
        except asyncio.CancelledError:  # the orchestrator itself is stopping (Ctrl-C): resumable later
            self._finish(workflow, task, TaskState.INTERRUPTED, "the ADW process stopped")
            raise
        finally:
            del self._tokens[key]
            task.follow_up = None  # sent once: a later resume runs the phase's own prompt

    async def _acquire(self, task: Task, token: CancelToken) -> bool:
        """Wait for an agent slot unless cancelled first; steps need none."""
        if token.requested:
            return False
        if task.kind != "agent":
            return True
        acquire = asyncio.ensure_future(self._slots.acquire())
        stop = asyncio.ensure_future(token.wait())
        await asyncio.wait({acquire, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not acquire.done():
            acquire.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await acquire
        got = acquire.done() and not acquire.cancelled()
        if got and token.requested:
            self._slots.release()
            return False
        return got

    async def _attempt(
        self, workflow: Workflow, task: Task, token: CancelToken
    ) -> tuple[Attempt, AgentResult]:
        attempt = Attempt(number=len(task.attempts) + 1, follow_up=task.follow_up, queued_at=task.queued_at)
        task.attempts.append(attempt)
        task.queued_at = None
        task.state, task.reason = TaskState.RUNNING, ""
        task.started_at = task.started_at or attempt.started_at
        task.finished_at = None
        if self.store is not None:
            self.store.reset_output_budget(workflow.id, task.id)
        self._publish(
            TaskStarted(
                workflow_id=workflow.id,
                task_id=task.id,
                attempt=attempt.number,
                agent=task.agent,
                phase=task.phase,
            )
        )
        self._save(workflow, task)
        events = self._task_events(workflow, task, self.bus, attempt)
        judging = judged(task) and workflow.base_commit is not None
        if judging:
            events.held = []
        before = None
        checkpointed = task.checkpoint or task.follow_up is not None  # a follow-up is undone like a phase
        if checkpointed:
            before = await self._checkpoint_before(workflow, task, events)
        scope_findings = []
        try:
            result = await self._call_agent(workflow, task, events, token)
            attempt.usage = result.usage if result.usage != Usage() else events.usage
            if checkpointed:
                scope_findings = await self._checkpoint_after(workflow, task, events, before)
        finally:
            self._windows.get(workflow.id, {}).pop(task.id, None)
        if judging:
            result = await self._against_base(workflow, task, events, token, result)
            events.held = None
            for finding in result.findings:
                events.finding(finding)
        for finding in scope_findings:
            events.finding(finding)
        result.findings += scope_findings
        return attempt, result

    def _task_events(
        self, workflow: Workflow, task: Task, bus: EventBus, attempt: Attempt | None = None
    ) -> TaskEvents:
        """The task's events; with `attempt`, where it runs (a cluster node) is kept on it and saved."""
        store = self.store

        def placed(event: Placed) -> None:
            assert attempt is not None
            attempt.node = event.node
            self._save(workflow, task)

        return TaskEvents(
            bus,
            workflow.id,
            task.id,
            on_process=(lambda pid, created: store.add_process(pid, created, workflow.id, task.id))
            if store
            else None,
            on_process_exit=store.remove_process if store else None,
            on_placed=placed if attempt is not None else None,
        )

    async def _against_base(
        self, workflow: Workflow, task: Task, events: TaskEvents, token: CancelToken, result: AgentResult
    ) -> AgentResult:
        """Split the findings into new, pre-existing and fixed by running the phase's agent on the base commit
        too (once per base tree and command: cached and locked across workflows and processes)."""
        base_commit = workflow.base_commit
        assert base_commit is not None and events.held is not None
        # Agents return their findings; any they only reported are judged with them.
        reported_only = [finding for finding in events.held if finding not in result.findings]
        result = result.model_copy(update={"findings": result.findings + reported_only})
        if token.requested:
            return result

        async def run_on(checkout: Path) -> AgentResult | None:
            events.progress(f"running {task.agent} on the base commit {base_commit[:12]} once")
            copy = workflow.model_copy(deep=True, update={"cwd": str(checkout)})
            quiet = self._task_events(workflow, task, EventBus())  # base findings are not this task's
            # Here, whatever the executor: the checkout is a folder of this machine, not a worktree to ship.
            outcome = await self._call_agent(copy, task, quiet, token, self._local)
            return None if token.requested else outcome

        command = [task.agent, task.config.model_dump(mode="json") if task.config else None,
                   self.settings.model_dump(mode="json")]
        try:
            repo = await Repo.discover(workflow.repo)
            base, cached = await base_run(repo.adw_dir, repo.root, base_commit, command, run_on)
            only_changed = task.phase in CHANGED_FILES_ONLY
            changed = await changed_files(Path(workflow.cwd), base_commit) if only_changed else None
        except AdwError as exc:
            events.progress(f"no comparison with the base commit: {exc.message}")
            return result
        if base is None:
            return result
        if cached:
            events.progress(f"{task.agent} on the base commit {base_commit[:12]}: {base.summary} (cached)")
        block_on = task.config.block_on if task.config else "new"
        judged_result = compare(result, base, changed, block_on)
        judged_result.outputs["baseline"].update(base=base_commit, cached=cached)
        return judged_result

    async def _call_agent(
        self, workflow: Workflow, task: Task, events: TaskEvents, token: CancelToken, executor: Executor | None = None
    ) -> AgentResult:
        factory = self._factories.get(task.agent)
        if factory is None:
            return AgentResult.failed(
                f"unknown agent {task.agent!r}; known: {', '.join(sorted(self._factories))}"
            )
        executor = executor or (self._executor if task.kind == "agent" else self._local)
        phase = Phase(factory, workflow, self.settings, task, Path(workflow.cwd))
        job = asyncio.create_task(executor.run(phase, events, token))
        timeout = task.config.timeout if task.config else _STEP_TIMEOUT
        inactivity = task.config.inactivity_timeout if task.config else _STEP_TIMEOUT
        watchdog = asyncio.create_task(_watch(token, events, timeout, inactivity))
        stopping = asyncio.ensure_future(token.wait())
        try:
            await asyncio.wait({job, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not job.done():
                # The agent was asked to stop and goes through its signals; past them, stop waiting for it.
                done, _ = await asyncio.wait({job}, timeout=self.settings.stop_grace * 3 + 5)
                if not done:
                    job.cancel()
                    await asyncio.gather(job, return_exceptions=True)
                    return AgentResult.failed(token.reason or "the agent did not stop")
            return job.result()
        except asyncio.CancelledError:
            job.cancel()
            await asyncio.gather(job, return_exceptions=True)
            raise
        except Exception as exc:  # an adapter bug must fail its task, not the workflow's other tasks
            return AgentResult.failed(f"agent {task.agent} crashed: {type(exc).__name__}: {exc}")
        finally:
            watchdog.cancel()
            stopping.cancel()

    async def _checkpoint_before(self, workflow: Workflow, task: Task, events: TaskEvents) -> Checkpoint | None:
        """Checkpoint the worktree before a phase and open the phase's write window."""
        async with self._checkpoint_lock(workflow):
            made = await self._checkpoint(workflow, task, events, "before")
            windows = self._windows.setdefault(workflow.id, {})
            for other in windows.values():
                other.overlaps.add(task.id)
            windows[task.id] = Window(overlaps=set(windows))
        return made[1] if made else None

    async def _checkpoint_after(
        self, workflow: Workflow, task: Task, events: TaskEvents, before: Checkpoint | None
    ) -> list[Finding]:
        """Checkpoint the worktree after a phase, then undo its writes outside its scope (the checkpoint keeps
        them). Returns the finding that names them, if any."""
        async with self._checkpoint_lock(workflow):
            made = await self._checkpoint(workflow, task, events, "after")
            if made is None or before is None:
                return []
            checkpoints, after = made
            window = self._windows.get(workflow.id, {}).get(task.id, Window())
            own = write_scope(task)
            others = [workflow.task(other) for other in sorted(window.overlaps)]
            allowed = own + tuple(glob for other in others for glob in write_scope(other))
            root = checkpoints.repo.root
            try:
                paths = await out_of_scope(root, before, after, allowed, window)
                if not paths:
                    return []
                await restore(root, before.commit, paths)
                await checkpoints.checkpoint(f"adw {workflow.id}: undid writes outside the scope of {task.id}")
            except AdwError as exc:
                events.progress(f"could not check what {task.id} wrote: {exc.message}")
                return []
            for other_id, other_window in self._windows.get(workflow.id, {}).items():
                if other_id != task.id:
                    other_window.restored.update(dict.fromkeys(paths, before.tree))
        task.outputs["write_scope"] = {
            "restored": paths,
            "restored_from": before.number,
            "discarded_in": after.number,
            "ran_with": [other.id for other in others],
        }
        scope = ", ".join(own) or "nothing"
        message = (
            f"{task.id} may write {scope}, but {', '.join(paths)} changed: restored as of checkpoint "
            f"{before.number}; the discarded version is kept in checkpoint {after.number}"
        )
        if others:  # git cannot tell which of the phases running at once wrote a file
            message += f" ({', '.join(o.id for o in others)} ran at the same time: one of them wrote it)"
        events.progress(message)
        return [Finding(path=paths[0], severity=Severity.WARNING, message=message, source="write-scope")]

    def _checkpoint_lock(self, workflow: Workflow) -> asyncio.Lock:
        # One at a time per repository: the worktrees' checkpoint refs live in one shared ref store.
        return self._checkpoint_locks.setdefault(workflow.repo, asyncio.Lock())

    async def _checkpoint(
        self, workflow: Workflow, task: Task, events: TaskEvents, when: str
    ) -> tuple[Checkpoints, Checkpoint] | None:
        """Snapshot the worktree around a phase so it can be undone; a failure is reported, not fatal."""
        try:
            checkpoints = await Checkpoints.open(Path(workflow.cwd))
            made = await checkpoints.checkpoint(f"adw {workflow.id}: {when} {task.id}")
        except AdwError as exc:
            events.progress(f"checkpoint {when} {task.id} failed: {exc.message}")
            return None
        if made.checkpoint is None:
            return None
        task.outputs.setdefault("checkpoints", {})[when] = made.checkpoint.number
        events.progress(f"checkpoint {made.checkpoint.number} {when} {task.id}")
        return checkpoints, made.checkpoint

    def _finish(
        self, workflow: Workflow, task: Task, state: TaskState, reason: str = "", attempt: int | None = None
    ) -> None:
        task.state, task.reason = state, reason
        task.finished_at = time.time()
        self._publish(
            TaskFinished(
                workflow_id=workflow.id,
                task_id=task.id,
                state=state,
                attempt=attempt,
                reason=reason,
                summary=task.summary,
            )
        )
        self._save(workflow, task)

    async def _watch_requests(self) -> None:
        """Cancel requests from other processes (`adw cancel`) arrive through the store."""
        assert self.store is not None
        while True:
            await asyncio.sleep(_REQUEST_POLL)
            self.store.flush()
            for workflow_id, task_id in self.store.take_cancel_requests(self._workflows):
                self.cancel(workflow_id, task_id)

    def _publish(
        self, event: TaskFinished | TaskStarted | WorkflowStarted | WorkflowFinished | Progress
    ) -> None:
        self.bus.publish(event)

    def _save(self, workflow: Workflow, task: Task | None = None) -> None:
        if self.store is not None:
            self.store.save(workflow, task)


def _check_max_agents(limit: int) -> None:
    if not 1 <= limit <= MAX_AGENTS:
        raise AdwError(f"max_agents must be 1 to {MAX_AGENTS}, not {limit}", f"pick 1 to {MAX_AGENTS}")


class AgentSlots:
    """A counting semaphore whose limit can change while it is held (asyncio.Semaphore's cannot)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._freed = asyncio.Event()

    async def acquire(self) -> None:
        while self.used >= self.limit:
            self._freed.clear()
            await self._freed.wait()  # wakes every waiter; each checks again, one takes a freed slot
        self.used += 1

    def release(self) -> None:
        self.used -= 1
        self._freed.set()

    def resize(self, limit: int) -> None:
        self.limit = limit
        self._freed.set()


async def _watch(token: CancelToken, events: TaskEvents, limit: float, inactivity: float) -> None:
    started = time.monotonic()
    while not token.requested:
        now = time.monotonic()
        if now - started >= limit:
            token.cancel(f"timed out after {limit:g}s", TaskState.FAILED)
        elif now - events.last_activity >= inactivity:
            token.cancel(f"no output for {inactivity:g}s", TaskState.FAILED)
        else:
            await asyncio.sleep(min(started + limit, events.last_activity + inactivity) - now)


def _dependents(workflow: Workflow, task_id: str) -> list[Task]:
    """Every task that depends on `task_id`, directly or through others, in the workflow's order."""
    reached = {task_id}
    changed = True
    while changed:
        changed = False
        for task in workflow.tasks:
            if task.id not in reached and reached.intersection(task.deps):
                reached.add(task.id)
                changed = True
    return [task for task in workflow.tasks if task.id in reached and task.id != task_id]


def _judge(result: AgentResult, token: CancelToken) -> tuple[TaskState, str]:
    if token.requested:
        return token.state, token.reason
    if result.status == "succeeded":
        return TaskState.SUCCEEDED, ""
    return TaskState.FAILED, result.reason


def _outcome(workflow: Workflow) -> tuple[TaskState, str]:
    states = [task.state for task in workflow.tasks]
    if all(state is TaskState.SUCCEEDED for state in states):
        stale = [task.id for task in workflow.tasks if task.stale]
        return TaskState.SUCCEEDED, f"stale after a follow-up: {', '.join(stale)}" if stale else ""
    for state in (TaskState.INTERRUPTED, TaskState.FAILED, TaskState.CANCELLED):
        culprits = [task for task in workflow.tasks if task.state is state]
        if culprits:
            first = culprits[0]
            return state, f"{first.id}: {first.reason}" if first.reason else first.id
    return TaskState.FAILED, "not every task succeeded"

