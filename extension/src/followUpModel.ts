// What the follow-up commands, the transcript and the review comments decide, without `vscode` (unit-tested).
import * as path from 'node:path';
import type { CommandResults, ServerCommands, Task, Workflow } from './protocol';

export type FollowUpLocation = NonNullable<ServerCommands['followUp'][3]>;

/** Tasks whose agent left a session a follow-up can continue, the newest phase first (the default one). */
export function followUpTasks(workflow: Workflow): Task[] {
  return workflow.tasks.filter((task) => task.session).reverse();
}

/** Workflows a follow-up can go to now: not running, with a task that has an agent session. */
export function followUpWorkflows(workflows: Workflow[]): Workflow[] {
  return workflows.filter((w) => w.state !== 'running' && w.state !== 'pending' && followUpTasks(w).length > 0);
}

/** The newest workflow whose worktree holds `file` and which a follow-up can reach, with the file's path in that
 * worktree and whether the workflow changed it (the lists are newest first, as the server sends them). */
export function workflowOfFile(workflows: Workflow[], file: string, sep = path.sep,
): { workflow: Workflow; relative: string; changed: boolean } | undefined {
  for (const workflow of workflows) {
    if (!followUpTasks(workflow).length) continue;
    const root = workflow.cwd.endsWith(sep) ? workflow.cwd : workflow.cwd + sep;
    if (!file.startsWith(root)) continue;
    const relative = file.slice(root.length).split(sep).join('/');
    const changed = workflow.tasks.some((task) => (task.files_changed ?? []).includes(relative));
    return { workflow, relative, changed };
  }
  return undefined;
}

/** A follow-up's location from an editor range (0-based lines, the end's character) and the document's lines:
 * 1-based inclusive lines; a range ending at the start of a line does not take that line. */
export function locationFor(relative: string, startLine: number, endLine: number, endCharacter: number,
  lines: string[]): FollowUpLocation {
  const last = endLine > startLine && endCharacter === 0 ? endLine - 1 : endLine;
  return {
    file: relative, startLine: startLine + 1, endLine: last + 1, selectedCode: lines.slice(startLine, last + 1).join('\n'),
  };
}

/** What the editor says once the server took the follow-up. */
export function followUpSent(result: CommandResults['followUp'], workflowName: string): string {
  const stale = result.stale.length
    ? ` ${result.stale.join(', ')} ran before it and ${result.stale.length === 1 ? 'is' : 'are'} now stale: `
      + '"Resume Workflow" runs them again.'
    : '';
  return `ADW: follow-up sent to ${result.task} of ${workflowName} (attempt ${result.attempt}).${stale}`;
}

/** argv (after the interpreter) streaming a task's transcript until its run ends: `adw logs … --follow`. */
export function transcriptArgs(repo: string, workflow: string, task: string): string[] {
  return ['-m', 'adw', '-C', repo, 'logs', workflow, '--task', task, '--follow'];
}

export function transcriptTitle(workflowName: string, task: string): string {
  return `ADW Transcript: ${workflowName}/${task}`;
}
