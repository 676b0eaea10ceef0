// The Worktrees view: one row per worktree of the repository (`adw/worktrees`).
import * as vscode from 'vscode';
import type { AdwClient } from '../client';
import { conflictLines, worktreeDescription, worktreeLabel } from '../format';
import { Requests, Worktree } from '../protocol';

export class WorktreesProvider implements vscode.TreeDataProvider<Worktree>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  /** The last list the server sent; commands pick from it too. */
  worktrees: Worktree[] = [];

  constructor(private readonly adw: AdwClient) {}

  async load(): Promise<Worktree[]> {
    try {
      this.worktrees = await this.adw.request<Worktree[]>(Requests.worktrees);
    } catch (error) {
      this.adw.output.debug(`worktrees: ${String(error)}`);
      this.worktrees = [];
    }
    this.changed.fire();
    return this.worktrees;
  }

  getChildren(element?: Worktree): Worktree[] {
    return element ? [] : this.worktrees.filter((w) => !w.prunable);
  }

  getTreeItem(worktree: Worktree): vscode.TreeItem {
    const item = new vscode.TreeItem(worktreeLabel(worktree));
    item.id = worktree.path;
    item.description = worktreeDescription(worktree);
    const conflicts = conflictLines(worktree.conflicts ?? []);
    item.tooltip = new vscode.MarkdownString(`**${worktree.name}** — \`${worktree.path}\`\n\n`
      + `${worktree.checkpoints} checkpoint(s)${worktree.locked ? ', locked' : ''}`
      + (conflicts.length ? `\n\nWould conflict with:\n${conflicts.map((line) => `- ${line}`).join('\n')}` : ''));
    item.iconPath = worktree.agentsRunning ? new vscode.ThemeIcon('sync~spin')
      : conflicts.length ? new vscode.ThemeIcon('warning', new vscode.ThemeColor('list.warningForeground'))
        : new vscode.ThemeIcon(worktree.is_main ? 'repo' : 'git-branch');
    item.contextValue = worktree.is_main ? 'worktree.main' : 'worktree';
    item.resourceUri = vscode.Uri.file(worktree.path);
    return item;
  }

  dispose(): void {
    this.changed.dispose();
  }
}
