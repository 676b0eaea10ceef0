// One toast when a workflow ends while you look elsewhere, with what to do next (setting `adw.notifications`).
// Permission questions need no code here: the server asks them with window/showMessageRequest, which VS Code shows
// as a notification with the answers as buttons.
import * as vscode from 'vscode';
import { worktreeOf } from './format';
import type { Workflow, Worktree } from './protocol';
import { endText, endedSince, NotifySetting, worthTelling } from './runEnds';

export class RunNotifications {
  private seen: Map<string, string> | undefined;

  constructor(private readonly worktrees: () => Worktree[]) {}

  /** Called with every workflow list the view loads; the first list only sets what was already there. */
  update(list: Workflow[]): void {
    const setting = vscode.workspace.getConfiguration('adw').get<NotifySetting>('notifications', 'all');
    const ended = endedSince(this.seen, list);
    this.seen = new Map(list.map((w) => [w.id, w.state]));
    for (const workflow of ended) if (worthTelling(workflow, setting)) void this.tell(workflow);
  }

  private async tell(workflow: Workflow): Promise<void> {
    const failed = workflow.tasks.find((t) => t.state === 'failed') ?? workflow.tasks.at(-1);
    const worktree = worktreeOf(workflow.cwd, this.worktrees());
    const followUp = (await vscode.commands.getCommands(true)).includes('adw.sendFollowUp');
    const actions = workflow.state === 'succeeded'
      ? [...(worktree ? ['Merge…'] : []), 'Show Log']
      : ['Show Log', 'Resume', ...(followUp ? ['Send Follow-up'] : [])];
    const show = workflow.state === 'succeeded' ? vscode.window.showInformationMessage : vscode.window.showWarningMessage;
    const picked = await show(endText(workflow), ...actions);
    if (picked === 'Merge…') await vscode.commands.executeCommand('adw.mergeWorktree', worktree);
    if (picked === 'Show Log' && failed) {
      await vscode.commands.executeCommand('adw.openTaskLog', workflow.id, failed.id, workflow.repo, workflow.name);
    }
    if (picked === 'Resume') await vscode.commands.executeCommand('adw.resumeWorkflow', { workflow });
    if (picked === 'Send Follow-up') await vscode.commands.executeCommand('adw.sendFollowUp', { workflow, task: failed });
  }
}
