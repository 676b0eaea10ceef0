// A checkpoint's files as read-only documents (`adw-checkpoint:` URIs), served by the server's checkpointFile
// command, so that VS Code's own diff editor compares them with another checkpoint or with the files.
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { AdwClient } from './client';
import { DiffSide, diffSides, diffTitle } from './format';
import type { ChangedFile } from './protocol';

export const CHECKPOINT_SCHEME = 'adw-checkpoint';

interface Query {
  worktree: string;
  /** null: the empty side of a file that was added or deleted. */
  number: number | null;
  file: string;
}

export class CheckpointFiles implements vscode.TextDocumentContentProvider {
  constructor(private readonly adw: AdwClient) {}

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const { worktree, number, file } = JSON.parse(uri.query) as Query;
    if (number === null) return '';
    const content = await this.adw.command('checkpointFile', worktree, number, file);
    return content.binary ? `(binary file at checkpoint ${number})\n` : content.text;
  }
}

function uri(worktree: string, file: string, side: DiffSide): vscode.Uri {
  if (side.kind === 'files') return vscode.Uri.file(path.join(worktree, file));
  const number = side.kind === 'checkpoint' ? side.number : null;
  // The path names the worktree, the checkpoint and the file, so the editor's tab says which version it shows.
  const shown = `/${path.basename(worktree)}/${number ?? 'none'}/${file}`;
  return vscode.Uri.from({ scheme: CHECKPOINT_SCHEME, path: shown, query: JSON.stringify({ worktree, number, file }) });
}

/** The native diff editor's arguments for one file changed from checkpoint `from` to `to` (null: the files). */
export function diffArguments(worktree: string, file: ChangedFile, from: number, to: number | null,
): [vscode.Uri, vscode.Uri, string] {
  const [left, right] = diffSides(file, from, to);
  return [uri(worktree, file.path, left), uri(worktree, file.path, right), diffTitle(file.path, from, to)];
}

/** Every file changed from checkpoint `from` to `to` (null: the files) in one multi-file diff editor. */
export async function openChanges(worktree: string, files: ChangedFile[], from: number, to: number | null) {
  if (!files.length) {
    void vscode.window.showInformationMessage(`ADW: ${to === null
      ? `the files equal checkpoint ${from}` : `checkpoints ${from} and ${to} hold the same files`}.`);
    return;
  }
  const resources = files.map((file) => {
    const [left, right] = diffArguments(worktree, file, from, to);
    return [vscode.Uri.file(path.join(worktree, file.path)), left, right];
  });
  const title = `${path.basename(worktree)}: checkpoint ${from} ↔ ${to === null ? 'now' : `checkpoint ${to}`}`;
  await vscode.commands.executeCommand('vscode.changes', title, resources);
}
