// Read-only documents rendered by the ADW command line: a task's log.
// They run `python -m adw …` with the server's interpreter, so they too only exist in a trusted workspace.
import * as vscode from 'vscode';
import { AdwClient, run } from './client';
import { taskLogTitle } from './format';

export const LOG_SCHEME = 'adw-log';

interface Query {
  cwd: string;
  args: string[];
}

export class CliDocuments implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;

  constructor(private readonly adw: AdwClient) {}

  taskLogUri(repo: string, workflow: string, task: string, workflowName = workflow): vscode.Uri {
    return this.uri(LOG_SCHEME, `/${workflow}/${taskLogTitle(workflowName, task)}`,
      { cwd: repo, args: ['logs', workflow, '--task', task] });
  }

  /** Opens (or re-renders, since logs grow) the document. */
  async show(uri: vscode.Uri): Promise<void> {
    this.changed.fire(uri);
    const document = await vscode.workspace.openTextDocument(uri);
    await vscode.window.showTextDocument(document, { preview: true });
  }

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const python = this.adw.interpreter?.path;
    if (!vscode.workspace.isTrusted || !python) return 'ADW is not running (Restricted Mode, or no interpreter).';
    const query = JSON.parse(uri.query) as Query;
    const result = await run(python, ['-m', 'adw', '-C', query.cwd, ...query.args], query.cwd);
    return result.ok ? result.stdout || '(empty)\n' : `adw ${query.args.join(' ')} failed:\n${result.stderr}`;
  }

  private uri(scheme: string, path: string, query: Query): vscode.Uri {
    return vscode.Uri.from({ scheme, path, query: JSON.stringify(query) });
  }

  dispose(): void {
    this.changed.dispose();
  }
}
