// The Checkpoints view: the checkpoints of the worktree holding the active editor (else the workspace).
import * as vscode from 'vscode';
import type { AdwClient } from '../client';
import { ago, checkpointLabel, worktreeOf } from '../format';
import { Checkpoint, CheckpointList, Requests, Worktree } from '../protocol';

export type CheckpointNode = { worktree: string; checkpoint: Checkpoint };

export class CheckpointsProvider implements vscode.TreeDataProvider<CheckpointNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  private list: CheckpointList | undefined;
  view: vscode.TreeView<CheckpointNode> | undefined;

  constructor(private readonly adw: AdwClient, private readonly worktrees: () => Worktree[]) {}

  /** The active worktree: the one holding the active editor's file. A diff, a log or no editor at all keeps the
   * worktree shown (opening a checkpoint's diff must not switch the view to another worktree); the workspace
   * folder is the start. */
  activeWorktree(): string | undefined {
    const file = vscode.window.activeTextEditor?.document.uri;
    if (file?.scheme !== 'file') return this.list?.worktree ?? this.adw.root?.fsPath;
    return worktreeOf(file.fsPath, this.worktrees())?.path ?? this.adw.root?.fsPath;
  }

  async load(): Promise<void> {
    const worktree = this.activeWorktree();
    try {
      this.list = worktree ? await this.adw.request<CheckpointList>(Requests.checkpoints, { worktree }) : undefined;
    } catch (error) {
      this.adw.output.debug(`checkpoints: ${String(error)}`);
      this.list = undefined;
    }
    if (this.view) {
      const holder = this.list && this.worktrees().find((w) => w.path === this.list?.worktree);
      this.view.description = holder?.name;
    }
    this.changed.fire();
  }

  getChildren(element?: CheckpointNode): CheckpointNode[] {
    if (element || !this.list) return [];
    const worktree = this.list.worktree;
    // Newest first, like a history; redo entries (undone checkpoints) stay visible and marked.
    return [...this.list.checkpoints].reverse().map((checkpoint) => ({ worktree, checkpoint }));
  }

  getTreeItem({ worktree, checkpoint }: CheckpointNode): vscode.TreeItem {
    const item = new vscode.TreeItem(checkpointLabel(checkpoint));
    item.id = `${worktree}#${checkpoint.redo ? 'redo' : 'undo'}${checkpoint.number}`;
    item.description = `${ago(checkpoint.created, new Date())}${checkpoint.redo ? ' · undone (redo)' : ''}`;
    item.iconPath = new vscode.ThemeIcon(checkpoint.redo ? 'redo' : 'git-commit');
    item.contextValue = checkpoint.redo ? 'checkpoint.redo' : 'checkpoint';
    if (!checkpoint.redo) {
      item.command = {
        command: 'adw.showCheckpointDiff', title: 'Show Diff Against Current Files',
        arguments: [worktree, checkpoint.number],
      };
    }
    return item;
  }

  dispose(): void {
    this.changed.dispose();
  }
}
