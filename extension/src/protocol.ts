// The server's custom protocol (server/adw/lsp/views.py, commands.py) as the extension sees it.
// Shapes are the JSON the server sends (pydantic models dumped with snake_case keys).

import type { ErrorAction, ServerCommands } from './protocol.generated';

export type { ErrorAction, ServerCommands };

/** `adw.server.<name>` commands; vscode-languageclient registers these ids itself, so the client never does. */
export const serverCommand = (name: keyof ServerCommands): string => `adw.server.${name}`;

export const Requests = {
  worktrees: 'adw/worktrees',
  workflows: 'adw/workflows',
  checkpoints: 'adw/checkpoints',
  pullRequests: 'adw/pullRequests',
} as const;

export const CHANGED = 'adw/changed';

/** `adw/configuration`: sent whenever the server (re)loads `.adw.toml` / `pyproject.toml`; `error` names the key
path and file of an invalid one (every command is refused until it is fixed), null when it is valid. */
export const CONFIGURATION = 'adw/configuration';

export interface ConfigurationParams {
  error: string | null;
  hint: string | null;
}

export type ChangedWhat = 'worktrees' | 'workflows' | 'checkpoints';

export interface ChangedParams {
  what: ChangedWhat | string;
}

export interface Worktree {
  name: string;
  path: string;
  branch: string | null;
  is_main: boolean;
  locked: boolean;
  prunable: boolean;
  checkpoints: number;
  dirty: boolean | null;
  ahead: number | null;
  behind: number | null;
  agentsRunning?: number;
  /** Predicted conflicts with the other active worktrees (server/adw/lsp/conflicts.py). */
  conflicts?: WorktreeConflict[];
  /** The main folder of its repository (the server serves every workspace folder's repository). */
  repository?: string;
}

/** Another active worktree whose branch (or newest checkpoint) would conflict with this one's. */
export interface WorktreeConflict {
  worktree: string;
  branch: string | null;
  path: string;
  /** Set when git could not merge the two at all (unrelated histories). */
  error: string | null;
  files: { path: string; kind: string }[];
}

export type TaskState = 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'interrupted' | 'skipped';

export interface Usage {
  cost_usd: number | null;
}

export interface Task {
  id: string;
  phase: string;
  agent: string;
  kind: 'agent' | 'step';
  state: TaskState;
  reason: string;
  summary: string;
  started_at: number | null;
  finished_at: number | null;
  usage: Usage;
  /** The conversation a follow-up continues; null when the agent keeps none (a command, a check). */
  session?: { agent: string; id: string } | null;
  /** Ran before a follow-up changed what it depends on: "Resume Workflow" runs it again. */
  stale?: boolean;
  files_changed?: string[];
  /** Its attempts; `node` is where one ran when not in ADW's own process (a Ray cluster node: "HOST (NODE-ID)"). */
  attempts?: { number: number; node?: string | null }[];
}

export interface Workflow {
  id: string;
  name: string;
  repo: string;
  cwd: string;
  spec: string | null;
  worktree: string | null;
  /** The commit its worktree started from. */
  base_commit?: string | null;
  state: TaskState;
  reason: string;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  tasks: Task[];
  usage: Usage;
  /** The run it belongs to: the workflows started together (null in records made before runs were kept). */
  run_id?: string | null;
  /** Set on a candidate of `adw sdlc --best-of N`. */
  best_of?: { group: string; number: number; agent: string | null; model: string | null } | null;
}

/** One row of `compare` (server/adw/sdlc/best_of.py), best first. */
export interface Candidate {
  number: number;
  workflow: string;
  worktree: string;
  agent: string;
  model: string;
  state: TaskState;
  reason: string;
  /** null: the phase did not run. */
  new_test_failures: number | null;
  new_findings: number | null;
  files: number;
  insertions: number;
  deletions: number;
  /** The diff the comparison measured: from `base_commit` to `tip` (a tree or commit id), file by file. */
  base_commit: string | null;
  tip: string | null;
  /** The repository, where git finds both (the workspace may hold several). */
  repo: string | null;
  /** The candidate's worktree; null once it is archived (its diff then comes from the archive). */
  path: string | null;
  changes: ChangedFile[];
  cost_usd: number | null;
  seconds: number | null;
  rank: number;
  reasons: string[];
}

export interface Comparison {
  group: string;
  spec: string | null;
  candidates: Candidate[];
}

export interface PickResult extends Message {
  group: string;
  picked: number;
  worktree: string;
  merge: MergeResult | null;
  archived: { number: number; worktree: string; path: string; archive_ref: string | null }[];
  /** Set when picked as a pull request (`pr`): the draft opened or updated instead of a merge. */
  pull_request: PullRequestOutcome | null;
}

export interface Checkpoint {
  number: number;
  message: string;
  created: string;
  kind: string;
  redo: boolean;
}

export interface CheckpointList {
  worktree: string;
  checkpoints: Checkpoint[];
}

export interface ChangedFile {
  path: string;
  /** git's letter: A added, M modified, D deleted, T type changed. */
  status: string;
  /** null for a binary file. */
  insertions: number | null;
  deletions: number | null;
}

export interface MergePreview {
  source: string;
  target: string;
  clean: boolean;
  conflicts: string[];
  /** What the branch brings since it left the target. */
  files: ChangedFile[];
  insertions: number;
  deletions: number;
  diffstat: string;
  /** The branch's conflicts with other worktrees still active (the merge dialog warns about them). */
  activeConflicts?: WorktreeConflict[];
}

/** The files that differ from a checkpoint to another one (or to the current files when `to` is null). */
export interface CheckpointChanges {
  worktree: string;
  number: number;
  to: number | null;
  files: ChangedFile[];
}

export interface CheckpointFile {
  /** false: the file was not there at that checkpoint (an added or deleted file's empty side). */
  exists: boolean;
  binary: boolean;
  text: string;
}

export interface MergeResult {
  preview: MergePreview;
  merged: boolean;
  message: string;
}

export interface ScoutLocation {
  path: string;
  line: number;
  reason: string;
  scouts: string[];
}

export interface LspLocation {
  uri: string;
  range: { start: { line: number; character: number }; end: { line: number; character: number } };
}

export interface ScoutResult {
  task: string;
  locations: ScoutLocation[];
  lspLocations: LspLocation[];
  reportUri: string;
}

export interface StartedWorkflows {
  workflows: { id: string; name: string; spec: string | null; resumed: boolean }[];
}

export type SdlcOptions = NonNullable<ServerCommands['startSdlc'][1]>;

/** What startSdlc's `options.existing` may say once the user chose (a Resume / Remove and Rerun button). */
export type ExistingChoice = NonNullable<SdlcOptions['existing']>;

/** The settings that shape a parallel SDLC run: adw.maxAgents, adw.executor and adw.rayAddress. */
export interface SdlcSettings {
  maxAgents: number;
  executor: string;
  rayAddress: string;
}

/** The options Start Parallel SDLC and Run SDLC from Issue send: each setting only where it overrides the
 * repository's `[tool.adw]` (maxAgents 0, executor "config" and an empty rayAddress keep it; the address only with
 * executor "ray"), and the user's choice for a spec whose worktree exists. An executor the server does not know
 * (a hand-edited settings.json) is sent as it is, for the server to refuse with its choices. */
export function sdlcOptions(settings: SdlcSettings, existing?: ExistingChoice): SdlcOptions {
  const executor = settings.executor.trim() || 'config';
  const address = settings.rayAddress.trim();
  return {
    ...(settings.maxAgents > 0 ? { maxAgents: settings.maxAgents } : {}),
    ...(executor !== 'config' ? { executor: executor as SdlcOptions['executor'] } : {}),
    ...(executor === 'ray' && address ? { address } : {}),
    ...(existing ? { existing } : {}),
  };
}

/** Every command's result says what it did in `message`. */
export interface Message {
  message: string;
}

/** What each `adw.server.*` command answers (docs/PROTOCOL.md); its arguments are `ServerCommands`. */
export interface PullRequest {
  number: number;
  url: string;
  title: string;
  state: string;
  draft: boolean;
  head: string;
  created: boolean;
}

export type CheckState = 'none' | 'pending' | 'success' | 'failure';

export interface Checks {
  state: CheckState;
  passed: number;
  failed: number;
  pending: number;
  url: string | null;
}

/** One worktree branch in `adw/pullRequests`: its open pull request and the CI state of its head. */
export interface BranchReview {
  branch: string;
  pull_request: PullRequest | null;
  checks: Checks | null;
}

export interface ReviewStatus {
  available: boolean;
  /** Why not (no forge remote, no login), with what to do. */
  reason: string;
  branches: BranchReview[];
}

export interface PullRequestOutcome {
  workflow: string;
  branch: string;
  base: string;
  push: { mode: 'new' | 'fast-forward' | 'up-to-date' | 'lease' };
  pull_request: PullRequest;
  issue: number | null;
  message: string;
}

/** A span of a task on its lane in `adw.server.timeline` (server/adw/workflow/timeline.py); seconds since the
 * run started. */
export interface TimelineBar {
  workflow_id: string;
  task_id: string;
  attempt: number;
  state: 'queued' | 'running' | 'retried' | 'failed' | 'cancelled' | 'interrupted' | 'succeeded';
  start: number;
  end: number;
  critical: boolean;
}

export interface TimelineLane {
  workflow_id: string;
  name: string;
  state: TaskState;
  repo: string;
  bars: TimelineBar[];
}

/** The model, the figures `adw timeline` prints, and the SVG it writes: the webview draws the server's SVG. */
export interface TimelineResult {
  timeline: { run_id: string; live: boolean; speedup: number | null; slot_wait: number; lanes: TimelineLane[] };
  figures: string[];
  svg: string;
}

export interface CommandResults {
  cancel: { workflow: string; task: string | null; cancelled: boolean };
  checkpoint: Message;
  checkpointChanges: CheckpointChanges;
  checkpointFile: CheckpointFile;
  compare: Comparison;
  createPullRequest: PullRequestOutcome;
  createWorktree: Message & { worktree: Worktree };
  followUp: { workflow: string; task: string; attempt: number; stale: string[] };
  listCheckpoints: Checkpoint[];
  listWorktrees: Worktree[];
  merge: MergeResult;
  mergePreview: MergePreview;
  pick: PickResult;
  redo: Message;
  removeWorktree: Message;
  resume: { workflow: string; resumed: boolean };
  scout: ScoutResult;
  sdlcFromIssue: StartedWorkflows;
  startSdlc: StartedWorkflows;
  status: Workflow | Workflow[];
  timeline: TimelineResult;
  undo: Message;
}

/** JSON-RPC InternalError: a bug in the server, whose details are in its log. */
const INTERNAL_ERROR = -32603;

/** A button of a failure's toast: one the server's error names (ErrorAction), or the server's own log. */
export type ToastAction = ErrorAction | { kind: 'serverLog'; title: 'Show Log' };

/** The one toast of a failed command: the server's message (already worded for the editor, "what — what to do")
 * and the buttons that help: the next steps the error carries (`data.actions`: Resume, Show Log of the failed
 * task, Remove and Rerun…), or "Show Log" of the server when only its log can tell more. */
export function failureToast(error: unknown): { message: string; actions: ToastAction[] } {
  const message = error instanceof Error ? error.message : String(error);
  const { code, data } = (error ?? {}) as { code?: unknown; data?: { actions?: unknown } };
  const actions: ToastAction[] = Array.isArray(data?.actions) ? data.actions as ErrorAction[] : [];
  if (code === INTERNAL_ERROR) actions.push({ kind: 'serverLog', title: 'Show Log' });
  return { message: `ADW: ${message}`, actions };
}

/** The extension command (and its arguments) that carries out a toast's button. */
export function actionCommand(action: ToastAction): { command: string; args: unknown[] } {
  switch (action.kind) {
    case 'resume': return { command: 'adw.resumeWorkflow', args: [action.workflow] };
    case 'showLog': return { command: 'adw.openTaskLog', args: [action.workflow, action.task] };
    case 'rerun': return { command: 'adw.startSdlc', args: [undefined, action.specs, action.existing] };
    case 'serverLog': return { command: 'adw.showOutput', args: [] };
  }
}
