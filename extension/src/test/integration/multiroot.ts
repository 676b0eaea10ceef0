// extensionTestsPath module for a multi-root workspace (ADW_MULTIROOT=1 in e2e/integration.mjs): two demo
// repositories in one window. One server serves both: the Worktrees view groups its rows by repository, lenses and
// commands act on the repository of their file or worktree (from the palette: the one the user picks), and a folder
// removed at runtime leaves the views.
import * as assert from 'node:assert/strict';
import { realpathSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { activate } from '../../extension';
import type { Checkpoint, Worktree } from '../../protocol';
import { isRepositoryNode } from '../../repositories';

type Api = Awaited<ReturnType<typeof activate>>;

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export async function run(): Promise<void> {
  try {
    await scenario();
  } catch (error) {
    console.error(`multi-root test failed: ${(error as Error).stack ?? String(error)}`);
    throw error;
  }
}

async function scenario(): Promise<void> {
  const folders = vscode.workspace.workspaceFolders!.map((folder) => realpathSync(folder.uri.fsPath));
  assert.equal(folders.length, 2, 'the workspace must have two folders for this test');
  const api = await vscode.extensions.getExtension<Api>('adw.adw')!.activate();
  await until('the server to run', () => api.adw.state === 'running' || undefined);

  const worktrees = await api.views.worktrees.load();
  assert.deepEqual([...new Set(worktrees.map((w) => w.repository))], folders);
  const groups = api.views.worktrees.getChildren().filter(isRepositoryNode);
  assert.deepEqual(groups.map((g) => g.repository), folders, 'one row per repository');
  for (const group of groups) {
    const rows = api.views.worktrees.getChildren(group);
    assert.ok(rows.length === 1 && !isRepositoryNode(rows[0]) && rows[0].path === group.repository, group.repository);
  }

  // The second folder's spec has its lenses; a checkpoint there is taken in that repository only.
  const spec = vscode.Uri.file(path.join(folders[1], 'specs', 'add.md'));
  await vscode.window.showTextDocument(spec);  // the lens provider command needs the document open
  const titles = await until('the second folder\'s spec lenses', async () => {
    const lenses = await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', spec);
    return lenses?.length ? lenses.map((l) => l.command?.title ?? '') : undefined;
  });
  assert.ok(titles.some((t) => t.includes('Start Parallel SDLC')), titles.join(', '));
  const made = await vscode.commands.executeCommand<{ checkpoint: Checkpoint | null }>('adw.server.checkpoint', folders[1], 'second');
  assert.equal(made.checkpoint?.number, 1);
  const second = await vscode.commands.executeCommand<Checkpoint[]>('adw.server.listCheckpoints', folders[1]);
  const first = await vscode.commands.executeCommand<Checkpoint[]>('adw.server.listCheckpoints', folders[0]);
  assert.deepEqual([second.map((c) => c.message), first.length], [['second'], 0]);

  // From the palette, Create Worktree asks which repository, the active editor's (two's spec) first, and makes the
  // worktree in the one picked; Start Parallel SDLC offers the specs of both folders. The pickers are answered
  // here: the test and the extension share the `vscode` API object.
  type Item = vscode.QuickPickItem & { repository?: string };
  const offered: Item[][] = [];
  const answers: ((items: readonly Item[]) => Item | undefined)[] = [];
  const showQuickPick = vscode.window.showQuickPick;
  const answer = async (items: readonly Item[]) => {
    offered.push([...items]);
    return answers.shift()?.(items);
  };
  (vscode.window as { showQuickPick: unknown }).showQuickPick = answer;
  try {
    answers.push((items) => items.find((item) => item.repository === folders[0]));
    // Not awaited: it ends with a notification offering to open the new worktree.
    void vscode.commands.executeCommand('adw.createWorktree', undefined, 'picked');
    const made = await until('the worktree made in the picked repository', async () =>
      (await vscode.commands.executeCommand<Worktree[]>('adw.server.listWorktrees')).find((w) => w.name === 'picked'));
    assert.deepEqual(offered.map((items) => items.map((item) => item.repository)), [[folders[1], folders[0]]],
      'both repositories, the active editor\'s first');
    assert.equal(made.repository, folders[0]);

    answers.push(() => undefined);  // the spec picker dismissed: nothing starts
    await vscode.commands.executeCommand('adw.startSdlc');
    const specs = offered[1].map((item) => path.join(realpathSync(item.detail ?? ''), item.description ?? '', item.label));
    for (const folder of folders) assert.ok(specs.includes(path.join(folder, 'specs', 'add.md')), specs.join(', '));
  } finally {
    (vscode.window as { showQuickPick: unknown }).showQuickPick = showQuickPick;
  }

  // The second folder removed: the server drops its repository, and the view shows the first one's rows alone.
  assert.ok(vscode.workspace.updateWorkspaceFolders(1, 1));
  await until('the removed folder to leave the Worktrees view', async () => {
    const rows = await api.views.worktrees.load();
    return rows.every((w) => w.repository === folders[0]) || undefined;
  });
  assert.ok(api.views.worktrees.getChildren().every((row) => !isRepositoryNode(row)), 'no group rows for one');
  console.log('multi-root: two repositories served, grouped, and one removed at runtime');
}
