// Entry point: wires the language client, the three views, the status bar and the commands together.
import * as vscode from 'vscode';
import { AdwClient, pythonExtensionApi } from './client';
import { registerCommands, Views } from './commands';
import { CHECKPOINT_SCHEME, CheckpointFiles } from './checkpointFiles';
import { CliDocuments, LOG_SCHEME } from './documents';
import { registerFollowUps } from './followUps';
import { runningAgents } from './format';
import { RunNotifications } from './notifications';
import { StatusItem } from './status';
import { CandidatesProvider, registerCandidates } from './views/candidates';
import { CheckpointsProvider } from './views/checkpoints';
import { registerTimeline } from './views/timeline';
import { WorkflowsProvider } from './views/workflows';
import { WorktreesProvider } from './views/worktrees';

let adw: AdwClient | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<{ adw: AdwClient; views: Views }> {
  const output = vscode.window.createOutputChannel('ADW', { log: true });
  adw = new AdwClient(output);
  const worktrees = new WorktreesProvider(adw);
  const workflows = new WorkflowsProvider(adw);
  const checkpoints = new CheckpointsProvider(adw, () => worktrees.worktrees);
  const documents = new CliDocuments(adw);
  const status = new StatusItem();
  const candidates = new CandidatesProvider(adw);
  const notifications = new RunNotifications(adw, () => worktrees.worktrees);
  checkpoints.view = vscode.window.createTreeView('adw.checkpoints', { treeDataProvider: checkpoints });

  const views: Views = {
    worktrees, workflows, checkpoints, documents,
    endsToldByServer: (ids) => notifications.tellsItself(ids),
    async refresh(what: string) {
      // Agent counts per worktree come with the worktree list, so workflow changes refresh both.
      const loads: Promise<unknown>[] = [];
      if (what !== 'checkpoints') loads.push(worktrees.load());
      if (what === 'workflows' || what === 'all') loads.push(workflows.load());
      await Promise.all(loads);
      if (what !== 'workflows') await checkpoints.load();
    },
  };
  const refresh = debounce((what: string) => void views.refresh(what), 150);

  context.subscriptions.push(
    output, adw, worktrees, workflows, checkpoints, checkpoints.view, documents, status,
    vscode.window.registerTreeDataProvider('adw.worktrees', worktrees),
    vscode.window.registerTreeDataProvider('adw.workflows', workflows),
    vscode.workspace.registerTextDocumentContentProvider(LOG_SCHEME, documents),
    vscode.workspace.registerTextDocumentContentProvider(CHECKPOINT_SCHEME, new CheckpointFiles(adw)),
    vscode.commands.registerCommand('adw.showOutput', () => output.show()),
    ...registerCommands(adw, views),
    ...registerFollowUps(adw, workflows),
    candidates, ...registerCandidates(adw, candidates, workflows, (what) => views.refresh(what)),
    ...registerTimeline(adw, workflows),
    adw.onDidChange(refresh),
    adw.onDidChangeState((state) => status.setState(state)),
    adw.onDidLoadConfiguration((params) => status.setConfigurationError(params.error ?? undefined)),
    workflows.onDidLoad((list) => status.setAgents(runningAgents(list))),
    workflows.onDidLoad((list) => notifications.update(list)),
    vscode.window.onDidChangeActiveTextEditor(() => void checkpoints.load()),
    vscode.workspace.onDidGrantWorkspaceTrust(() => void adw?.start()),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration('adw.python')) void adw?.restart();
    }),
  );
  await watchPythonInterpreter(context, adw);
  void adw.start();
  // The returned API is what the in-editor integration tests drive.
  return { adw, views };
}

export function deactivate(): Promise<void> | undefined {
  return adw?.stop();
}

/** Restart when the Python extension's active interpreter changes (it may be the one running ADW). */
async function watchPythonInterpreter(context: vscode.ExtensionContext, client: AdwClient): Promise<void> {
  const api = await pythonExtensionApi().catch(() => undefined);
  const event = api?.environments?.onDidChangeActiveEnvironmentPath;
  if (event) {
    context.subscriptions.push(event(() => {
      if (client.interpreter?.source === 'Python extension') void client.restart();
    }));
  }
}

/** Coalesces bursts (a workflow emits several `adw/changed` per second), remembering every kind asked for. */
function debounce(fn: (what: string) => void, ms: number): (what: string) => void {
  let timer: NodeJS.Timeout | undefined;
  const pending = new Set<string>();
  return (what: string) => {
    pending.add(what);
    clearTimeout(timer);
    timer = setTimeout(() => {
      const kinds = [...pending];
      pending.clear();
      fn(kinds.length === 1 ? kinds[0] : 'all');
    }, ms);
  };
}
