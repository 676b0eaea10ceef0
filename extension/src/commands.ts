// The `adw.*` commands of the palette and views. Each forwards to an `adw.server.*` command
// (arguments typed by ServerCommands, generated from server/adw/lsp/params.py) after asking the user what the server needs.
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { AdwClient } from './client';
import type { CliDocuments } from './documents';
import {
  finishedWorkflows, mergeDetail, resumableWorkflows, workflowDescription, worktreeDescription, worktreeLabel, worktreeOf,
} from './format';
import {
  ExistingChoice, MergeResult, ScoutResult, SdlcSettings, StartedWorkflows, Workflow, Worktree, sdlcOptions,
} from './protocol';
import { RepositoryNode, isRepositoryNode } from './repositories';
import { SPEC_GLOB, specChoices } from './specs';
import type { CheckpointNode, CheckpointsProvider } from './views/checkpoints';
import { showLocations } from './views/locations';
import type { WorkflowNode, WorkflowsProvider } from './views/workflows';
import type { WorktreesProvider } from './views/worktrees';

export interface Views {
  worktrees: WorktreesProvider;
  workflows: WorkflowsProvider;
  checkpoints: CheckpointsProvider;
  documents: CliDocuments;
  refresh(what: string): Promise<void>;
  /** Workflows whose end the server announces itself (with their pull request), so no run-end toast of ours. */
  endsToldByServer(ids: string[]): void;
}

const STRATEGIES = { Merge: 'merge', Squash: 'squash', Rebase: 'rebase' } as const;

export function registerCommands(adw: AdwClient, views: Views): vscode.Disposable[] {
  const commands = new Commands(adw, views);
  const table: Record<string, (...args: never[]) => Promise<unknown>> = {
    'adw.startSdlc': (uri?: vscode.Uri, selected?: (vscode.Uri | string)[], existing?: ExistingChoice) =>
      commands.startSdlc(uri, selected, existing),
    'adw.sdlcFromIssue': (issue?: string | RepositoryNode, pr?: boolean, existing?: ExistingChoice, repository?: string) =>
      commands.sdlcFromIssue(issue, pr, existing, repository),
    'adw.scout': (task?: string) => commands.scout(task),
    'adw.createWorktree': (row?: RepositoryNode, name?: string) => commands.createWorktree(row, name),
    'adw.openWorktree': (node?: Worktree) => commands.openWorktree(node),
    'adw.mergeWorktree': (node?: Worktree) => commands.mergeWorktree(node),
    'adw.removeWorktree': (node?: Worktree) => commands.removeWorktree(node),
    'adw.checkpoint': () => commands.checkpoint(),
    'adw.undo': () => commands.restore('undo'),
    'adw.redo': () => commands.restore('redo'),
    'adw.undoToCheckpoint': (node: CheckpointNode) => commands.undoTo(node),
    'adw.openCheckpointChanges': (node: CheckpointNode) => views.checkpoints.openChanges(node),
    'adw.selectCheckpointForCompare': (node: CheckpointNode) => views.checkpoints.select(node),
    'adw.compareCheckpointWithSelected': (node: CheckpointNode) => views.checkpoints.compareWithSelected(node),
    'adw.openTaskLog': (workflow: string, task: string, repo?: string, name?: string) =>
      commands.openTaskLog(workflow, task, repo, name),
    'adw.cancelWorkflow': (node?: WorkflowNode) => commands.cancel(node),
    'adw.cancelTask': (node?: WorkflowNode) => commands.cancelTask(node),
    'adw.resumeWorkflow': (node?: WorkflowNode | string) => commands.resume(node),
    'adw.createPullRequest': (node?: WorkflowNode) => commands.createPullRequest(node),
    'adw.showStatus': () => commands.showStatus(),
    'adw.restartServer': () => adw.restart(),
    'adw.refreshViews': () => views.refresh('all'),
  };
  return adw.registerCommands(table);
}

class Commands {
  constructor(private readonly adw: AdwClient, private readonly views: Views) {}

  /** Starts the specs picked (or given by the explorer, the spec lens or a toast's button); a spec whose worktree
   * exists is refused with one toast whose buttons say what to do (Resume, Run in a New Worktree, Remove and
   * Rerun), and `existing` is that choice. */
  async startSdlc(uri?: vscode.Uri, selected?: (vscode.Uri | string)[], existing?: ExistingChoice,
  ): Promise<StartedWorkflows | undefined> {
    const specs = selected?.length ? selected : uri ? [uri] : await this.pickSpecs();
    if (!specs?.length) return undefined;
    const paths = specs.map((spec) => (typeof spec === 'string' ? spec : spec.fsPath));
    const started = await this.adw.command('startSdlc', paths, sdlcOptions(sdlcSettings(), existing));
    void vscode.window.showInformationMessage(
      `ADW: ${existing === 'resume' ? 'resumed' : 'started'} ${started.workflows.length} workflow(s): `
      + started.workflows.map((w) => w.name).join(', '));
    await vscode.commands.executeCommand('adw.workflows.focus');
    await this.views.refresh('workflows');
    return started;
  }

  /** `adw sdlc --issue N [--pr]` from the editor: the issue of the repository's forge is the spec (the repository
   * of the row it is run from, else the one picked); with `pr`, the server opens the workflow's draft pull request
   * when it is done (and says so). An issue whose worktree exists is refused with one toast whose buttons (the
   * server's choices) run this again with `existing`. */
  async sdlcFromIssue(issueOrRow?: string | RepositoryNode, pr?: boolean, existing?: ExistingChoice, repository?: string,
  ): Promise<StartedWorkflows | undefined> {
    repository ??= isRepositoryNode(issueOrRow) ? issueOrRow.repository
      : await this.chooseRepository('Run SDLC from Issue: in which repository?');
    if (!repository) return undefined;
    let issue = isRepositoryNode(issueOrRow) ? undefined : issueOrRow;
    issue ??= await vscode.window.showInputBox({
      title: 'ADW: Run SDLC from Issue', prompt: 'The number or URL of an issue of this repository\'s forge',
      placeHolder: 'e.g. 123, #123 or https://github.com/owner/repo/issues/123', ignoreFocusOut: true,
      validateInput: (value) => (/^\s*(#?\d+|https?:\/\/\S+)\s*$/.test(value) ? undefined
        : 'an issue number (123) or its URL'),
    });
    if (!issue?.trim()) return undefined;
    if (pr === undefined) {
      const choice = await vscode.window.showQuickPick([
        { label: '$(git-pull-request-draft) Run, then open a draft pull request', pr: true },
        { label: '$(play) Run only', description: 'Create Pull Request later', pr: false },
      ], { title: `ADW: Run SDLC from Issue ${issue.trim()}` });
      if (!choice) return undefined;
      pr = choice.pr;
    }
    let started: StartedWorkflows;
    try {
      started = await this.adw.command('sdlcFromIssue', issue.trim(), pr, sdlcOptions(sdlcSettings(), existing),
        repository);
    } catch (error) {
      const data = (error as { data?: { error?: string; actions?: { kind: string; title: string; existing?: ExistingChoice }[] } }).data;
      const choices = data?.error === 'WorktreeExistsError' ? data.actions?.filter((a) => a.kind === 'rerun') : undefined;
      if (!choices?.length) throw error;
      const picked = await vscode.window.showWarningMessage(error instanceof Error ? `ADW: ${error.message}` : 'ADW',
        ...choices.map((choice) => choice.title));
      const choice = choices.find((candidate) => candidate.title === picked);
      return choice ? this.sdlcFromIssue(issue, pr, choice.existing, repository) : undefined;
    }
    if (pr) this.views.endsToldByServer(started.workflows.map((w) => w.id));
    void vscode.window.showInformationMessage(
      `ADW: ${existing === 'resume' ? 'resumed' : 'started'} ${started.workflows.map((w) => w.name).join(', ')} `
      + `from issue ${issue.trim()}`);
    await vscode.commands.executeCommand('adw.workflows.focus');
    await this.views.refresh('workflows');
    return started;
  }

  /** The specs of every workspace folder (with their folder's path when there are several). */
  private async pickSpecs(): Promise<vscode.Uri[] | undefined> {
    if (!this.adw.root) throw new Error('open a folder with a git repository first');
    const files = await vscode.workspace.findFiles(SPEC_GLOB);
    if (!files.length) throw new Error(`no spec files (${SPEC_GLOB}) in this workspace`);
    const active = vscode.window.activeTextEditor?.document.uri.fsPath;
    const several = (vscode.workspace.workspaceFolders?.length ?? 0) > 1;
    const items = specChoices(files.map((f) => f.fsPath), active).map((choice) => ({
      label: path.basename(choice.path),
      description: path.dirname(vscode.workspace.asRelativePath(choice.path, false)),
      detail: several ? vscode.workspace.getWorkspaceFolder(vscode.Uri.file(choice.path))?.uri.fsPath : undefined,
      picked: choice.picked,
      uri: vscode.Uri.file(choice.path),
    }));
    const picked = await vscode.window.showQuickPick(items, {
      canPickMany: true, title: 'ADW: Start Parallel SDLC', placeHolder: 'Specs to run in parallel, one worktree each',
    });
    return picked?.map((item) => item.uri);
  }

  async scout(task?: string): Promise<ScoutResult | undefined> {
    task ??= await vscode.window.showInputBox({
      title: 'ADW: Scout', prompt: 'Describe the task; scouts rank the files and lines to read first',
      placeHolder: 'e.g. add a square root function', ignoreFocusOut: true,
    });
    if (!task?.trim()) return undefined;
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `ADW: scouting "${task}"…` },
      () => this.adw.command('scout', task));
    const client = await this.adw.ready();
    const locations = result.lspLocations.map((loc) => client.protocol2CodeConverter.asLocation(loc));
    if (!locations.length) {
      void vscode.window.showInformationMessage(`ADW: the scouts found nothing for "${task}".`);
      return result;
    }
    const reasons = new Map(locations.map((loc, i) => [loc, result.locations[i]?.reason ?? '']));
    await showLocations(`Scout: ${task}`, locations, reasons);
    // Not awaited: the command resolves with the result while the user browses the picker.
    const picker = vscode.window.createQuickPick<vscode.QuickPickItem & { location: vscode.Location }>();
    // The References view takes the focus when it fills: the picker stays open beside it all the same.
    picker.ignoreFocusOut = true;
    picker.title = `ADW: Scout — ${task}`;
    picker.placeholder = 'Open a location (all of them are in the References view)';
    picker.matchOnDescription = true;
    picker.items = result.locations.map((loc, i) => ({
      label: `${loc.path}:${loc.line}`, description: loc.reason, detail: loc.scouts.join(', '), location: locations[i],
    }));
    // Moving through the picker previews each location without taking the focus from it.
    picker.onDidChangeActive(([item]) => {
      if (item) {
        void vscode.window.showTextDocument(item.location.uri,
          { selection: item.location.range, preview: true, preserveFocus: true });
      }
    });
    picker.onDidAccept(() => {
      const pick = picker.selectedItems[0];
      picker.hide();
      if (pick) void vscode.window.showTextDocument(pick.location.uri, { selection: pick.location.range });
    });
    picker.onDidHide(() => picker.dispose());
    picker.show();
    return result;
  }

  /** In the repository of the row it is run from, else the one picked. */
  async createWorktree(row?: RepositoryNode, name?: string): Promise<unknown> {
    const repository = row?.repository ?? await this.chooseRepository('Create Worktree: in which repository?');
    if (!repository) return undefined;
    name ??= await vscode.window.showInputBox({
      title: 'ADW: Create Worktree', prompt: 'Name of the worktree (its branch is adw/NAME)',
      validateInput: (value) => (/^[\w.-]+$/.test(value) ? undefined : 'letters, digits, ".", "_" and "-" only'),
    });
    if (!name) return undefined;
    const result = await this.adw.command('createWorktree', name, null, repository);
    const choice = await vscode.window.showInformationMessage(`ADW: ${result.message}`, 'Open in New Window');
    if (choice) await this.openWorktree(result.worktree);
    return result;
  }

  async openWorktree(node?: Worktree): Promise<void> {
    const worktree = node ?? await this.pickWorktree('Open which worktree in a new window?', true);
    if (worktree) {
      await vscode.commands.executeCommand('vscode.openFolder', vscode.Uri.file(worktree.path), { forceNewWindow: true });
    }
  }

  /** Shows the merge preview first; merges only a clean preview, and only after the user confirms. */
  async mergeWorktree(node?: Worktree): Promise<MergeResult | undefined> {
    const worktree = node ?? await this.pickWorktree('Merge which worktree?', false);
    if (!worktree) return undefined;
    const preview = await this.adw.command('mergePreview', worktree.name, null, worktree.repository);
    if (!preview.clean) {
      const choice = await vscode.window.showWarningMessage(
        `Merging ${preview.source} into ${preview.target} would conflict`, {
          modal: true,
          detail: `Conflicting files:\n${preview.conflicts.join('\n')}\n\nNothing was merged; the files are marked in the Problems panel.`,
        }, 'Show Problems');
      if (choice) await vscode.commands.executeCommand('workbench.actions.view.problems');
      return undefined;
    }
    const ask = preview.activeConflicts?.length ? vscode.window.showWarningMessage : vscode.window.showInformationMessage;
    const strategy = await ask(`Merge ${preview.source} into ${preview.target}?`, {
      modal: true, detail: `It merges cleanly into ${preview.target} and brings:\n${mergeDetail(preview)}`,
    }, 'Merge', 'Squash', 'Rebase');
    if (!strategy) return undefined;
    const result = await this.adw.command('merge', worktree.name, STRATEGIES[strategy], null, worktree.repository);
    void vscode.window.showInformationMessage(`ADW: ${result.message}`);
    return result;
  }

  /** Archives by default (`adw worktree restore NAME` brings it back). */
  async removeWorktree(node?: Worktree): Promise<unknown> {
    const worktree = node ?? await this.pickWorktree('Remove which worktree?', false);
    if (!worktree) return undefined;
    const archive = 'Archive and Remove';
    const choice = await vscode.window.showWarningMessage(`Remove worktree ${worktree.name}?`, {
      modal: true,
      detail: `"${archive}" first saves all its work under refs/adw/archive/${worktree.name} `
        + '(it can be restored from there). "Remove Without Archive" refuses to drop unmerged work.',
    }, archive, 'Remove Without Archive');
    if (!choice) return undefined;
    const result = await this.adw.command('removeWorktree', worktree.name, choice === archive, false, worktree.repository);
    void vscode.window.showInformationMessage(`ADW: ${result.message}`);
    return result;
  }

  async checkpoint(): Promise<unknown> {
    const message = await vscode.window.showInputBox({ title: 'ADW: Checkpoint', prompt: 'Message (optional)' });
    if (message === undefined) return undefined;
    return this.adw.announce(await this.adw.command('checkpoint', this.views.checkpoints.activeWorktree(), message));
  }

  async restore(kind: 'undo' | 'redo'): Promise<unknown> {
    return this.adw.announce(await this.adw.command(kind, this.views.checkpoints.activeWorktree()));
  }

  async undoTo(node: CheckpointNode): Promise<unknown> {
    return this.adw.announce(await this.adw.command('undo', node.worktree, null, node.checkpoint.number));
  }

  /** Runs a failed, cancelled or interrupted workflow on from where it stopped (the server skips what already
   * succeeded); a toast's Resume button names it by id. */
  async resume(node?: WorkflowNode | string): Promise<unknown> {
    const workflow = typeof node === 'string' ? await this.workflowById(node)
      : node?.workflow ?? await this.chooseWorkflow('ADW: Resume Workflow', resumableWorkflows,
        'ADW: no failed, cancelled or interrupted workflow to resume.');
    if (!workflow) return undefined;
    const result = await this.adw.command('resume', workflow.id);
    void vscode.window.showInformationMessage(`ADW: resuming ${workflow.name}`);
    await vscode.commands.executeCommand('adw.workflows.focus');
    await this.views.workflows.load();
    return result;
  }

  /** Cancels one task of a running workflow (its row's button); the workflow's other tasks go on. A click that
   * lands while the view redraws its rows (every second while something runs) comes without its row: then ask. */
  async cancelTask(node?: WorkflowNode): Promise<unknown> {
    node ??= await this.chooseRunningTask();
    if (!node) return undefined;
    if (!node.task) return this.cancel(node);
    const result = await this.adw.command('cancel', node.workflow.id, node.task.id);
    vscode.window.setStatusBarMessage(`ADW: cancelling ${node.workflow.name} · ${node.task.phase}`, 5000);
    return result;
  }

  /** A task's log in a tab named after its workflow and task; a toast's Show Log button gives only the ids. */
  async openTaskLog(workflowId: string, task: string, repo?: string, name?: string): Promise<void> {
    const workflow = repo ? undefined : await this.workflowById(workflowId);
    const cwd = repo ?? workflow?.repo ?? this.adw.root?.fsPath;
    if (!cwd) throw new Error('open a folder with a git repository first');
    await this.views.documents.show(this.views.documents.taskLogUri(cwd, workflowId, task, name ?? workflow?.name));
  }

  private async workflowById(id: string): Promise<Workflow | undefined> {
    return this.views.workflows.workflows.find((w) => w.id === id)
      ?? (await this.views.workflows.load()).find((w) => w.id === id);
  }

  async cancel(node?: WorkflowNode): Promise<unknown> {
    const workflow = node?.workflow ?? await this.chooseWorkflow('ADW: Cancel Workflow',
      (all) => all.filter((w) => w.state === 'running' || w.state === 'pending'),
      'ADW: no workflow is running.');
    if (!workflow) return undefined;
    const result = await this.adw.command('cancel', workflow.id);
    void vscode.window.showInformationMessage(`ADW: cancelling ${workflow.name}`);
    return result;
  }

  /** Pushes a finished workflow's branch and opens (or updates) its draft pull request, then offers to open it. */
  async createPullRequest(node?: WorkflowNode): Promise<unknown> {
    const workflow = node?.workflow ?? await this.chooseWorkflow('ADW: Create Pull Request',
      finishedWorkflows, 'ADW: no finished workflow to open a pull request for.');
    if (!workflow) return undefined;
    const chosen = workflow;
    const outcome = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `ADW: pushing ${chosen.name} and opening its pull request` },
      () => this.adw.command('createPullRequest', chosen.id));
    const pr = outcome.pull_request;
    const verb = pr.created ? 'Opened draft' : 'Updated';
    void this.views.worktrees.loadReviews(true);
    const open = await vscode.window.showInformationMessage(`ADW: ${verb} pull request #${pr.number} for ${chosen.name}.`, 'Open');
    if (open) await vscode.env.openExternal(vscode.Uri.parse(pr.url));
    return outcome;
  }

  /** Every workflow with its state; picking one lists its tasks, picking a task opens its log. */
  async showStatus(): Promise<void> {
    const workflows = await this.views.workflows.load();
    if (!workflows.length) {
      void vscode.window.showInformationMessage('ADW: no workflows yet. Run "ADW: Start Parallel SDLC".');
      return;
    }
    const chosen = await vscode.window.showQuickPick(workflows.map((w) => this.workflowItem(w)),
      { title: 'ADW: Status', placeHolder: 'Pick a workflow to see its tasks' });
    if (!chosen) return;
    const { workflow } = chosen;
    const task = await vscode.window.showQuickPick(workflow.tasks.map((t) => ({
      label: t.phase, description: `${t.state} · ${t.agent}`, detail: t.summary || t.reason || undefined, task: t,
    })), { title: `ADW: ${workflow.name}`, placeHolder: 'Open a task log' });
    if (task) await vscode.commands.executeCommand('adw.openTaskLog', workflow.id, task.task.id, workflow.repo, workflow.name);
  }

  /** Asks which of the workflows `select` keeps to act on; says `none` when there is nothing to choose. */
  private async chooseRunningTask(): Promise<WorkflowNode | undefined> {
    const running = (await this.views.workflows.load()).flatMap((workflow) => workflow.tasks
      .filter((task) => task.state === 'running' || task.state === 'pending').map((task) => ({ workflow, task })));
    if (!running.length) {
      void vscode.window.showInformationMessage('ADW: no task is running or waiting.');
      return undefined;
    }
    const items = running.map((node) => ({ label: `${node.workflow.name} · ${node.task.phase}`,
      description: node.task.state, node }));
    return (await vscode.window.showQuickPick(items, { title: 'ADW: Cancel Task' }))?.node;
  }

  private async chooseWorkflow(title: string, select: (all: Workflow[]) => Workflow[], none: string,
  ): Promise<Workflow | undefined> {
    const choices = select(await this.views.workflows.load());
    if (!choices.length) {
      void vscode.window.showInformationMessage(none);
      return undefined;
    }
    return (await vscode.window.showQuickPick(choices.map((w) => this.workflowItem(w)), { title }))?.workflow;
  }

  private workflowItem(workflow: Workflow) {
    return {
      label: workflow.name, description: workflowDescription(workflow, Date.now() / 1000),
      detail: `${workflow.id} · ${workflow.cwd}`, workflow,
    };
  }

  /** The repository a command run from the palette acts on: the workspace's only one, else the one the user picks
   * (the active editor's first); undefined when the pick is dismissed. */
  private async chooseRepository(title: string): Promise<string | undefined> {
    const worktrees = await this.views.worktrees.load();
    const repositories = [...new Set(worktrees.map((w) => w.repository).filter((r): r is string => !!r))];
    if (repositories.length < 2) {
      const only = repositories[0] ?? this.adw.root?.fsPath;
      if (!only) throw new Error('open a folder with a git repository first');
      return only;
    }
    const active = vscode.window.activeTextEditor?.document.uri;
    const current = active?.scheme === 'file' ? worktreeOf(active.fsPath, worktrees)?.repository : undefined;
    const ordered = current ? [current, ...repositories.filter((r) => r !== current)] : repositories;
    const pick = await vscode.window.showQuickPick(ordered.map((repository) => ({
      label: path.basename(repository), description: repository, repository,
    })), { title: `ADW: ${title}`, placeHolder: 'The repository of one of the workspace\'s folders' });
    return pick?.repository;
  }

  private async pickWorktree(title: string, includeMain: boolean): Promise<Worktree | undefined> {
    const worktrees = (await this.views.worktrees.load()).filter((w) => !w.prunable && (includeMain || !w.is_main));
    if (!worktrees.length) throw new Error('no ADW worktrees yet — "ADW: Create Worktree" makes one');
    const pick = await vscode.window.showQuickPick(worktrees.map((w) => ({
      label: worktreeLabel(w), description: worktreeDescription(w), detail: w.path, worktree: w,
    })), { title: `ADW: ${title}` });
    return pick?.worktree;
  }
}

/** adw.maxAgents, adw.executor and adw.rayAddress as the user set them. */
function sdlcSettings(): SdlcSettings {
  const settings = vscode.workspace.getConfiguration('adw');
  return {
    maxAgents: settings.get<number>('maxAgents', 0),
    executor: settings.get<string>('executor', 'config'),
    rayAddress: settings.get<string>('rayAddress', ''),
  };
}
