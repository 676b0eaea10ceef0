// The Checkpoints view: the checkpoints of the worktree holding the active editor (else the workspace). Each
// checkpoint unfolds into the files that differ from it now; a file opens VS Code's diff editor, and any two
// checkpoints can be compared ("Select for Compare", then "Compare with Selected").
import * as vscode from 'vscode';
import { diffArguments, openChanges } from '../checkpointFiles';
import type { AdwClient } from '../client';
import { ago, checkpointLabel, lineCounts, worktreeOf } from '../format';
import { ChangedFile, Checkpoint, CheckpointList, Requests, Worktree } from '../protocol';

export type CheckpointNode = { worktree: string; checkpoint: Checkpoint; file?: undefined };
/** A file that differs from the checkpoint to the current files. */
export type ChangedFileNode = { worktree: string; checkpoint: Checkpoint; file: ChangedFile };
export type CheckpointsNode = CheckpointNode | ChangedFileNode;

export class CheckpointsProvider implements vscode.TreeDataProvider<CheckpointsNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  private list: CheckpointList | undefined;
  view: vscode.TreeView<CheckpointsNode> | undefined;
  /** The checkpoint "Select for Compare" chose, until it is compared or the view shows another worktree. */
  selected: CheckpointNode | undefined;

  constructor(private readonly adw: AdwClient, private readonly worktrees: () => Worktree[]) {}

  /** The active worktree: the one holding the active editor's file. A diff of checkpoints, a log, the output or
   * no editor at all keeps the worktree shown (opening a checkpoint's diff must not switch the view to another
   * worktree); the workspace folder is the start. */
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
    if (this.selected && this.selected.worktree !== this.list?.worktree) await this.select(undefined);
    if (this.view) {
      const holder = this.list && this.worktrees().find((w) => w.path === this.list?.worktree);
      this.view.description = holder?.name;
    }
    this.changed.fire();
  }

  async getChildren(element?: CheckpointsNode): Promise<CheckpointsNode[]> {
    if (!element) return this.nodes();
    if (element.file) return [];
    const { worktree, checkpoint } = element;
    const changes = await this.adw.command('checkpointChanges', worktree, checkpoint.number);
    return changes.files.map((file) => ({ worktree, checkpoint, file }));
  }

  /** The view's rows: newest first, like a history; redo entries (undone checkpoints) stay visible and marked. */
  nodes(): CheckpointNode[] {
    if (!this.list) return [];
    const worktree = this.list.worktree;
    return [...this.list.checkpoints].reverse().map((checkpoint) => ({ worktree, checkpoint }));
  }

  getTreeItem(node: CheckpointsNode): vscode.TreeItem {
    const { worktree, checkpoint, file } = node;
    const key = `${worktree}#${checkpoint.redo ? 'redo' : 'undo'}${checkpoint.number}`;
    if (file) {
      const item = new vscode.TreeItem(vscode.Uri.file(`${worktree}/${file.path}`));
      item.id = `${key}/${file.path}`;
      item.description = `${file.path.includes('/') ? `${file.path.replace(/\/[^/]*$/, '')} · ` : ''}${lineCounts(file)}`;
      item.tooltip = `${file.path}: ${file.status} since checkpoint ${checkpoint.number}`;
      item.contextValue = 'checkpoint.file';
      item.command = {
        command: 'vscode.diff', title: 'Compare with the File',
        arguments: [...diffArguments(worktree, file, checkpoint.number, null), { preview: true }],
      };
      return item;
    }
    const item = new vscode.TreeItem(checkpointLabel(checkpoint), vscode.TreeItemCollapsibleState.Collapsed);
    item.id = key;
    const chosen = this.selected?.worktree === worktree && this.selected.checkpoint.number === checkpoint.number;
    item.description = `${ago(checkpoint.created, new Date())}${checkpoint.redo ? ' · undone (redo)' : ''}`
      + (chosen ? ' · selected for compare' : '');
    item.tooltip = 'Unfold to see the files that changed since; each opens a diff with the file.';
    item.iconPath = new vscode.ThemeIcon(checkpoint.redo ? 'redo' : 'git-commit');
    item.contextValue = checkpoint.redo ? 'checkpoint.redo' : 'checkpoint';
    return item;
  }

  /** Remembers `node` as the left side of the next "Compare with Selected" (menus show that command then). */
  async select(node: CheckpointNode | undefined): Promise<void> {
    this.selected = node;
    this.changed.fire();
    await vscode.commands.executeCommand('setContext', 'adw.checkpointSelected', Boolean(node));
  }

  /** Every file changed from the selected checkpoint to `node`'s, in one multi-file diff editor. */
  async compareWithSelected(node: CheckpointNode): Promise<void> {
    const selected = this.selected;
    if (!selected) throw new Error('select a checkpoint first ("Select for Compare" on its row)');
    const [from, to] = [selected.checkpoint.number, node.checkpoint.number].sort((a, b) => a - b);
    const changes = await this.adw.command('checkpointChanges', node.worktree, from, to);
    await openChanges(node.worktree, changes.files, from, to);
  }

  /** Every file changed from `node`'s checkpoint to the current files, in one multi-file diff editor. */
  async openChanges(node: CheckpointNode): Promise<void> {
    const changes = await this.adw.command('checkpointChanges', node.worktree, node.checkpoint.number);
    await openChanges(node.worktree, changes.files, node.checkpoint.number, null);
  }

  dispose(): void {
    this.changed.dispose();
  }
}
