// Generated from server/adw/lsp/params.py by `python -m adw.lsp.typescript`: do not edit.
// tests/lsp/test_lsp_params.py fails when this file and the server's models differ.

/** Positional arguments of each `adw.server.*` command; `null` means "not given". */
export interface ServerCommands {
  cancel: [workflow: string, task?: string | null];
  checkpoint: [worktree?: string | null, message?: string | null];
  checkpointChanges: [worktree: string | null, number: number, to?: number | null];
  checkpointFile: [worktree: string | null, number: number, file: string];
  compare: [id: string];
  createPullRequest: [workflow: string, base?: string | null];
  createWorktree: [name: string, base?: string | null, repository?: string | null];
  followUp: [workflow: string, message: string, task?: string | null, location?: { file: string; startLine: number; endLine: number; selectedCode?: string } | null];
  listCheckpoints: [worktree?: string | null, file?: string | null];
  listWorktrees: [];
  merge: [name: string, strategy?: 'merge' | 'squash' | 'rebase' | null, into?: string | null, repository?: string | null];
  mergePreview: [name: string, into?: string | null, repository?: string | null];
  pick: [id: string, number: number, strategy?: 'merge' | 'squash' | 'rebase' | null, pr?: boolean | null];
  redo: [worktree?: string | null];
  removeWorktree: [name: string, archive?: boolean | null, force?: boolean | null, repository?: string | null];
  resume: [workflow: string];
  scout: [task: string, worktree?: string | null, top?: number | null];
  sdlcFromIssue: [issue: string, pr?: boolean | null, options?: { maxAgents?: number | null; executor?: 'config' | 'local' | 'ray'; address?: string | null; existing?: 'refuse' | 'ask' | 'resume' | 'again' | 'replace' } | null, repository?: string | null];
  startSdlc: [specs: string[], options?: { maxAgents?: number | null; executor?: 'config' | 'local' | 'ray'; address?: string | null; existing?: 'refuse' | 'ask' | 'resume' | 'again' | 'replace' } | null];
  status: [workflow?: string | null];
  timeline: [id: string];
  undo: [worktree?: string | null, file?: string | null, to?: number | null];
}

/** A button of a failure's toast: a failed command's JSON-RPC error carries them in `data.actions`. */
export type ErrorAction = { title: string; kind: 'resume'; workflow: string } | { title: string; kind: 'showLog'; workflow: string; task: string } | { title: string; kind: 'rerun'; specs: string[]; existing: 'resume' | 'again' | 'replace' };
