// Pure text for views, the status bar and pickers (no `vscode` import: unit-tested under plain Node).
import type {
  BranchReview, Candidate, ChangedFile, Checkpoint, CheckState, MergePreview, Task, TaskState, Workflow, Worktree,
  WorktreeConflict,
} from './protocol';

export function duration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Seconds a task or workflow has run: until it finished, else until `now` (both in epoch seconds). */
export function elapsed(item: { started_at: number | null; finished_at: number | null }, now: number): number | undefined {
  if (item.started_at === null) return undefined;
  return (item.finished_at ?? now) - item.started_at;
}

export function cost(usd: number | null | undefined): string | undefined {
  return usd === null || usd === undefined ? undefined : `$${usd.toFixed(2)}`;
}

export function taskDescription(task: Task, now: number): string {
  const time = elapsed(task, now);
  const node = task.attempts?.at(-1)?.node;
  return [task.state, task.kind === 'agent' ? task.agent : undefined, node ? `on ${node}` : undefined,
    time === undefined ? undefined : duration(time), cost(task.usage.cost_usd)].filter(Boolean).join(' · ');
}

export function workflowDescription(workflow: Workflow, now: number): string {
  const running = workflow.tasks.filter((t) => t.state === 'running').map((t) => t.phase);
  const time = elapsed(workflow, now);
  // Why a run failed or was cancelled belongs on its row, not only in the hover.
  const why = FINISHED_BADLY.has(workflow.state) && workflow.reason ? firstLine(workflow.reason) : undefined;
  return [running.length ? running.join(' ‖ ') : workflow.state, why, time === undefined ? undefined : duration(time),
    cost(workflow.usage.cost_usd)].filter(Boolean).join(' · ');
}

const FINISHED_BADLY = new Set(['failed', 'cancelled']);

function firstLine(text: string): string {
  const line = text.split('\n', 1)[0].trim();
  return line.length > 80 ? `${line.slice(0, 79)}…` : line;
}

/** The title of a task's log tab: which workflow and which task, not `test.log` in every tab. */
export function taskLogTitle(workflowName: string, task: string): string {
  return `${workflowName} · ${task}.log`;
}

export function worktreeLabel(worktree: Worktree): string {
  return worktree.is_main ? worktree.branch ?? worktree.name : worktree.name;
}

export function worktreeDescription(worktree: Worktree, review?: BranchReview): string {
  const parts: string[] = [];
  if (worktree.branch && !worktree.is_main) parts.push(worktree.branch);
  if (worktree.dirty) parts.push('dirty');
  if (worktree.ahead || worktree.behind) parts.push(`↑${worktree.ahead ?? 0} ↓${worktree.behind ?? 0}`);
  const agents = worktree.agentsRunning ?? 0;
  if (agents) parts.push(agentsText(agents));
  const shown = reviewText(review);
  if (shown) parts.push(shown);
  const conflicts = worktree.conflicts ?? [];
  if (conflicts.length) parts.push(`⚠ conflicts with ${conflicts.map((c) => c.worktree).join(', ')}`);
  return parts.join(' · ');
}

/** One line per other worktree: its name and the files both change (or why git could not merge them). */
export function conflictLines(conflicts: WorktreeConflict[]): string[] {
  return conflicts.map((c) => `${c.worktree}: ${c.error ?? c.files.map((f) => `${f.path} (${f.kind})`).join(', ')}`);
}

const CHECK_MARKS: Record<CheckState, string> = { none: '', pending: '…', success: '✓', failure: '✗' };

/** A branch's pull request and CI state in a few characters: `PR #3 draft ✗ 1 failed`. */
export function reviewText(review?: BranchReview): string {
  const pr = review?.pull_request;
  if (!pr) return '';
  const parts = [`PR #${pr.number}${pr.draft ? ' draft' : ''}`];
  const checks = review?.checks;
  if (checks && checks.state !== 'none') {
    const detail = checks.state === 'failure' ? ` ${checks.failed} failed`
      : checks.state === 'pending' ? ` ${checks.pending} running` : '';
    parts.push(`${CHECK_MARKS[checks.state]}${detail}`);
  }
  return parts.join(' ');
}

/** Workflows Resume can run on: stopped before the end (failed, cancelled, or interrupted when ADW stopped). */
export function resumableWorkflows(workflows: Workflow[]): Workflow[] {
  return workflows.filter((w) => w.state === 'failed' || w.state === 'cancelled' || w.state === 'interrupted');
}

/** Workflows a pull request can be opened for: finished ones (a running one has nothing final to propose). */
export function finishedWorkflows(workflows: Workflow[]): Workflow[] {
  return workflows.filter((w) => w.state !== 'pending' && w.state !== 'running' && w.worktree);
}

export function agentsText(count: number): string {
  return `${count} agent${count === 1 ? '' : 's'} running`;
}

/** Agent tasks running now, across workflows (steps are quick git work, not agents). */
export function runningAgents(workflows: Workflow[]): number {
  return workflows.reduce((n, wf) => n + wf.tasks.filter((t) => t.state === 'running' && t.kind === 'agent').length, 0);
}

export function statusText(agents: number | undefined): string {
  return agents ? `$(sync~spin) ADW: ${agentsText(agents)}` : '$(check) ADW';
}

/** Codicon id for a task or workflow state. */
export function stateIcon(state: TaskState): string {
  switch (state) {
    case 'running': return 'sync~spin';
    case 'succeeded': return 'pass';
    case 'failed': return 'error';
    case 'cancelled': return 'circle-slash';
    case 'interrupted': return 'debug-pause';
    case 'skipped': return 'debug-step-over';
    case 'pending': return 'clock';
  }
}

export function ago(iso: string, now: Date): string {
  const seconds = Math.max(0, (now.getTime() - new Date(iso).getTime()) / 1000);
  if (seconds < 60) return 'just now';
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

export function checkpointLabel(checkpoint: Checkpoint): string {
  return `${checkpoint.number}. ${checkpoint.message || checkpoint.kind}`;
}

/** The worktree holding `file`: the deepest worktree path that is the file or one of its parents. */
export function worktreeOf<T extends { path: string }>(file: string, worktrees: T[]): T | undefined {
  const inside = (root: string) => file === root || file.startsWith(root.endsWith('/') ? root : root + '/');
  return worktrees.filter((w) => inside(w.path)).sort((a, b) => b.path.length - a.path.length)[0];
}

/** One side of a file's diff: its content at a checkpoint, the file in the worktree now, or nothing (added or
 * deleted on that side). */
export type DiffSide = { kind: 'checkpoint'; number: number } | { kind: 'files' } | { kind: 'empty' };

/** The two sides of a file changed from checkpoint `from` to checkpoint `to` (null: the current files). */
export function diffSides(file: { status: string }, from: number, to: number | null): [DiffSide, DiffSide] {
  const left: DiffSide = file.status === 'A' ? { kind: 'empty' } : { kind: 'checkpoint', number: from };
  const right: DiffSide = file.status === 'D' ? { kind: 'empty' }
    : to === null ? { kind: 'files' } : { kind: 'checkpoint', number: to };
  return [left, right];
}

/** The diff editor's title: `add.py (checkpoint 3 ↔ now)`. */
export function diffTitle(file: string, from: number, to: number | null): string {
  return `${file.split('/').pop()} (checkpoint ${from} ↔ ${to === null ? 'now' : `checkpoint ${to}`})`;
}

/** A changed file's line counts, `+3 -1`, or `binary`. */
export function lineCounts(file: ChangedFile): string {
  return file.insertions === null || file.deletions === null ? 'binary' : `+${file.insertions} -${file.deletions}`;
}

/** The merge dialog's detail: every file the merge brings with its line counts (the first `limit`), then the
 * totals, so that nobody confirms a merge without seeing what it contains. */
export function mergeDetail(preview: MergePreview, limit = 25): string {
  const lines = preview.files.slice(0, limit).map((f) => `${f.status} ${f.path}  ${lineCounts(f)}`);
  if (preview.files.length > limit) lines.push(`… and ${preview.files.length - limit} more`);
  lines.push(`${preview.files.length} file(s) changed, +${preview.insertions} -${preview.deletions}`);
  const others = preview.activeConflicts ?? [];
  if (others.length) {
    lines.unshift(`Warning: it conflicts with ${others.length} other active worktree(s); whichever merges second will `
      + 'have to resolve them:', ...conflictLines(others), '');
  }
  return lines.join('\n');
}

/** A candidate of a best-of run in the comparison picker: its rank, number and worktree, then how it was built. */
export function candidateLabel(candidate: Candidate): string {
  return `${candidate.rank}. candidate ${candidate.number} — ${candidate.worktree}`;
}

export function candidateDescription(candidate: Candidate): string {
  const time = candidate.seconds === null ? undefined : duration(candidate.seconds);
  return [candidate.model ? `${candidate.agent} (${candidate.model})` : candidate.agent, candidate.state, time,
    cost(candidate.cost_usd)].filter(Boolean).join(' · ');
}

/** A candidate's row in the Candidates view: what the ranking weighs (new test failures, new review findings,
 * size), then time and cost. */
export function candidateFacts(candidate: Candidate): string {
  const count = (n: number | null, noun: string, missing: string) =>
    n === null ? missing : `${n} ${noun}${n === 1 ? '' : 's'}`;
  const time = candidate.seconds === null ? undefined : duration(candidate.seconds);
  return [count(candidate.new_test_failures, 'new failure', 'tests not run'),
    count(candidate.new_findings, 'new finding', 'review not run'),
    `+${candidate.insertions} −${candidate.deletions} in ${candidate.files} file${candidate.files === 1 ? '' : 's'}`,
    time, cost(candidate.cost_usd) ?? 'cost unknown'].filter(Boolean).join(' · ');
}

/** How a candidate fares, for its icon: a regression (or tests that did not run), new findings, or clean. */
export function candidateVerdict(candidate: Candidate): 'regression' | 'findings' | 'clean' {
  if (candidate.new_test_failures !== 0) return 'regression';
  return candidate.new_findings !== 0 ? 'findings' : 'clean';
}

/** The best-of runs among the workflows, newest first: one entry per group, with its candidates. */
export function bestOfRuns(workflows: Workflow[]): { group: string; name: string; candidates: Workflow[] }[] {
  const runs = new Map<string, { group: string; name: string; candidates: Workflow[] }>();
  for (const workflow of workflows) {
    const group = workflow.best_of?.group;
    if (!group) continue;
    const run = runs.get(group) ?? { group, name: workflow.name.replace(/-\d+$/, ''), candidates: [] };
    run.candidates.push(workflow);
    runs.set(group, run);
  }
  return [...runs.values()];
}
