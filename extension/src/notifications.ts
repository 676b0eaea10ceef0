// One toast when a workflow ends while you look elsewhere, with what to do next (setting `adw.notifications`).
// Permission questions need no code here: the server asks them with window/showMessageRequest, which VS Code shows
// as a notification with the answers as buttons.
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { AdwClient } from './client';
import { worktreeOf } from './format';
import type { Workflow, Worktree } from './protocol';
import { revisionUri } from './views/candidates';
import { endText, endedSince, NotifySetting, worthTelling } from './runEnds';

export class RunNotifications {
  private seen: Map<string, string> | undefined;
  /** Workflows whose end the server tells itself (Run SDLC from Issue with a pull request: the draft's toast). */
  private readonly toldElsewhere = new Set<string>();

  constructor(private readonly adw: AdwClient, private readonly worktrees: () => Worktree[]) {}

  /** Called with every workflow list the view loads; the first list only sets what was already there. */
  update(list: Workflow[]): void {
    const setting = vscode.workspace.getConfiguration('adw').get<NotifySetting>('notifications', 'all');
    const ended = endedSince(this.seen, list);
    this.seen = new Map(list.map((w) => [w.id, w.state]));
    for (const workflow of ended) {
      if (worthTelling(workflow, setting) && !this.toldElsewhere.has(workflow.id)) void this.tell(workflow);
    }
  }

  tellsItself(ids: string[]): void {
    for (const id of ids) this.toldElsewhere.add(id);
  }

  private async tell(workflow: Workflow): Promise<void> {
    const failed = workflow.tasks.find((t) => t.state === 'failed') ?? workflow.tasks.at(-1);
    const worktree = worktreeOf(workflow.cwd, this.worktrees());
    const followUp = (await vscode.commands.getCommands(true)).includes('adw.sendFollowUp');
    const actions = workflow.state === 'succeeded'
      ? [...(worktree && workflow.base_commit ? ['Show Changes'] : []), ...(worktree ? ['Merge…'] : []), 'Show Log']
      : ['Show Log', 'Resume', ...(followUp ? ['Send Follow-up'] : [])];
    const show = workflow.state === 'succeeded' ? vscode.window.showInformationMessage : vscode.window.showWarningMessage;
    const picked = await show(endText(workflow), ...actions);
    if (picked === 'Show Changes' && worktree) await this.showChanges(workflow, worktree);
    if (picked === 'Merge…') await vscode.commands.executeCommand('adw.mergeWorktree', worktree);
    if (picked === 'Show Log' && failed) {
      await vscode.commands.executeCommand('adw.openTaskLog', workflow.id, failed.id, workflow.repo, workflow.name);
    }
    if (picked === 'Resume') await vscode.commands.executeCommand('adw.resumeWorkflow', { workflow });
    if (picked === 'Send Follow-up') await vscode.commands.executeCommand('adw.sendFollowUp', { workflow, task: failed });
  }

  /** What the run changed, file by file from the commit its worktree started at to the worktree's files, in VS
   * Code's multi-file diff editor (the files are the merge preview's: what merging the branch would bring). */
  private async showChanges(workflow: Workflow, worktree: Worktree): Promise<void> {
    try {
      const preview = await this.adw.command('mergePreview', worktree.name, null, worktree.repository);
      const base = workflow.base_commit ?? '';
      const resources = preview.files.map((file) => {
        const before = revisionUri(workflow.repo, base, file.path);
        const after = vscode.Uri.file(path.join(worktree.path, file.path));
        return [after, file.status === 'A' ? undefined : before, file.status === 'D' ? undefined : after];
      });
      await vscode.commands.executeCommand('vscode.changes', `${workflow.name}: changes`, resources);
    } catch (error) {
      this.adw.report(error);
    }
  }
}
