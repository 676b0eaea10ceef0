// Runs inside the extension host against the demo repository (see e2e/integration.mjs): the real extension,
// the real language server, real git worktrees and the built-in agents.
import * as assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { activate } from '../../extension';
import type { CommandResults, MergePreview, ScoutResult, StartedWorkflows, Workflow } from '../../protocol';

type Api = Awaited<ReturnType<typeof activate>>;

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, ms = 120_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('ADW extension in VS Code', () => {
  const root = vscode.workspace.workspaceFolders![0].uri.fsPath;
  const spec = path.join(root, 'specs', 'add.md');
  const worktree = `${root}.worktrees/add`;
  let api: Api;

  it('activates and starts the language server with adw.python', async () => {
    const extension = vscode.extensions.getExtension<Api>('adw.adw');
    assert.ok(extension, 'extension adw.adw is loaded');
    api = await extension.activate();
    await until('the server to run', () => api.adw.state === 'running' || undefined, 60_000);
    assert.equal(api.adw.interpreter?.source, 'adw.python');
  });

  it('registers the adw.* commands, and the client registers the server\'s adw.server.* ones', async () => {
    const commands = await vscode.commands.getCommands(true);
    for (const id of ['startSdlc', 'scout', 'createWorktree', 'openWorktree', 'mergeWorktree', 'removeWorktree',
      'checkpoint', 'undo', 'redo', 'cancelWorkflow', 'resumeWorkflow', 'createPullRequest', 'showStatus',
      'restartServer', 'showTimeline', 'sdlcFromIssue', 'compareCandidates', 'showCandidateDiff', 'pickCandidate',
      'pickCandidateAsPullRequest']) {
      assert.ok(commands.includes(`adw.${id}`), `adw.${id}`);
    }
    assert.ok(commands.includes('adw.server.startSdlc'));
    assert.ok(commands.includes('adw.server.undo'));
    assert.ok(commands.includes('adw.server.timeline'));
  });

  it('shows Start and Scout lenses on a spec', async () => {
    await vscode.window.showTextDocument(vscode.Uri.file(spec));
    const lenses = await until('spec lenses', async () => {
      const found = await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider',
        vscode.Uri.file(spec));
      return found?.length ? found : undefined;
    }, 30_000);
    // Each on the spec's heading, where a client running the lens under the cursor finds it.
    const heading = readFileSync(spec, 'utf8').split('\n').findIndex((line) => line.startsWith('#'));
    assert.deepEqual(lenses.map((l) => l.range.start.line), lenses.map(() => heading));
    const titles = lenses.map((l) => l.command?.title ?? '');
    assert.ok(titles.some((t) => t.includes('Start Parallel SDLC')), titles.join(', '));
    assert.ok(titles.some((t) => t.includes('Scout')), titles.join(', '));
  });

  it('lists the main worktree in the Worktrees view', async () => {
    const worktrees = await api.views.worktrees.load();
    const main = worktrees.find((w) => w.is_main);
    assert.equal(main?.path, root);
    assert.equal(api.views.worktrees.getTreeItem(main!).contextValue, 'worktree.main');
  });

  it('runs Start Parallel SDLC on a spec and the Workflows view follows it to the end', async () => {
    const started = await vscode.commands.executeCommand<StartedWorkflows>('adw.startSdlc', vscode.Uri.file(spec));
    assert.equal(started.workflows.length, 1);
    const id = started.workflows[0].id;
    // Only adw/changed notifications refresh the view here: no polling by the test.
    const done = await until('the workflow to finish', () => {
      const wf = api.views.workflows.workflows.find((w) => w.id === id);
      return wf && wf.state !== 'running' && wf.state !== 'pending' ? wf : undefined;
    }, 150_000);
    assert.equal(done.state, 'succeeded', done.reason);
    const tasks = api.views.workflows.getChildren({ workflow: done });
    assert.deepEqual(tasks.map((n) => n.task?.phase).slice(0, 4), ['worktree', 'scout', 'plan', 'build']);
    const item = api.views.workflows.getTreeItem(tasks[3]);
    assert.match(String(item.description), /^succeeded · spec-apply · \d+s/);
    assert.equal(item.command?.command, 'adw.openTaskLog');
    // A finished run folds up: its row gets a new id, so VS Code does not keep the expansion of the running one.
    const row = api.views.workflows.getTreeItem({ workflow: done });
    assert.equal(row.collapsibleState, vscode.TreeItemCollapsibleState.Collapsed);
    assert.notEqual(row.id, id);
    assert.ok(existsSync(path.join(worktree, 'src', 'calc', 'add.py')));
  });

  it('shows the new worktree with its branch', async () => {
    const worktrees = await api.views.worktrees.load();
    const add = worktrees.find((w) => w.name === 'add');
    assert.equal(add?.branch, 'adw/add');
    assert.match(String(api.views.worktrees.getTreeItem(add!).description), /^adw\/add/);
  });

  it('opens a task log in a tab named after its workflow and task', async () => {
    const wf = api.views.workflows.workflows[0];
    const build = api.views.workflows.getChildren({ workflow: wf }).find((n) => n.task?.id === 'build')!;
    const click = api.views.workflows.getTreeItem(build).command!;
    await vscode.commands.executeCommand(click.command, ...(click.arguments ?? []));
    const doc = await until('the log', () => {
      const active = vscode.window.activeTextEditor?.document;
      return active?.uri.scheme === 'adw-log' && active.getText().length ? active : undefined;
    });
    assert.match(doc.getText(), /build\s+started spec-apply/);
    assert.equal(path.posix.basename(doc.uri.path), `${wf.name} · build.log`);
  });

  it('shows the run timeline from a workflow\'s context menu in a webview named after its workflows', async () => {
    const wf = api.views.workflows.workflows[0];
    await vscode.commands.executeCommand('adw.showTimeline', { workflow: wf });
    const tab = await until('the timeline tab', () => vscode.window.tabGroups.all.flatMap((g) => g.tabs)
      .find((t) => t.input instanceof vscode.TabInputWebview && t.label === `ADW Timeline: ${wf.name}`));
    // The same run asked for again (by its id, as the lens does) reveals that panel instead of a second one.
    await vscode.commands.executeCommand('adw.showTimeline', wf.id);
    const timelines = vscode.window.tabGroups.all.flatMap((g) => g.tabs).filter((t) => t.label === tab.label);
    assert.equal(timelines.length, 1);
  });

  it('lists the checkpoints of the active worktree; a file opens the native diff, and the view stays', async () => {
    await vscode.window.showTextDocument(vscode.Uri.file(path.join(worktree, 'src', 'calc', 'add.py')));
    await api.views.checkpoints.load();
    const nodes = api.views.checkpoints.nodes();
    assert.ok(nodes.length >= 2, `checkpoints: ${nodes.length}`);
    assert.equal(nodes[0].worktree, worktree);
    const first = nodes[nodes.length - 1];
    assert.equal(first.checkpoint.number, 1);
    // Checkpoint 1 predates the build: add.py is one of the files changed since, added.
    const files = await api.views.checkpoints.getChildren(first);
    const added = files.find((n) => n.file?.path === 'src/calc/add.py');
    assert.ok(added, JSON.stringify(files.map((n) => n.file)));
    assert.equal(added.file?.status, 'A');
    const click = api.views.checkpoints.getTreeItem(added).command!;
    assert.equal(click.command, 'vscode.diff');
    await vscode.commands.executeCommand(click.command, ...(click.arguments ?? []));
    const input = await until('the diff editor', () => {
      const tab = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
      return tab instanceof vscode.TabInputTextDiff ? tab : undefined;
    });
    assert.equal(input.original.scheme, 'adw-checkpoint');
    assert.equal(input.modified.fsPath, path.join(worktree, 'src', 'calc', 'add.py'));
    // The diff is the active editor now: the view stays on the worktree it came from.
    await api.views.checkpoints.load();
    assert.equal(api.views.checkpoints.nodes()[0]?.worktree, worktree);

    // A checkpoint's side of a diff is that checkpoint's file, served by the server.
    const second = nodes[nodes.length - 2];
    const [, right] = (await api.views.checkpoints.getChildren(second))
      .map((n) => api.views.checkpoints.getTreeItem(n).command!.arguments as vscode.Uri[])[0];
    assert.equal(right.scheme, 'file');
    const left = (api.views.checkpoints.getTreeItem(added).command!.arguments as vscode.Uri[])[0];
    assert.equal((await vscode.workspace.openTextDocument(left)).getText(), '', 'an added file is empty before');

    // Any two checkpoints: select one, compare another with it.
    await vscode.commands.executeCommand('adw.selectCheckpointForCompare', first);
    assert.match(api.views.checkpoints.getTreeItem(first).description as string, /selected for compare/);
    await vscode.commands.executeCommand('adw.compareCheckpointWithSelected', nodes[0]);
    await until('the multi-file diff of two checkpoints', () =>
      vscode.window.tabGroups.activeTabGroup.activeTab?.label.includes(`checkpoint 1 ↔ checkpoint ${nodes[0].checkpoint.number}`));
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  // Before the undo test: undoing to checkpoint 1 rewinds the branch past the workflow's commit.
  it('previews a merge through the server with its files (conflicts would land in Problems)', async () => {
    const preview = await vscode.commands.executeCommand<MergePreview>('adw.server.mergePreview', 'add');
    assert.equal(preview.clean, true);
    assert.equal(preview.target, 'main');
    assert.ok(preview.files.some((f) => f.status === 'A' && f.path.endsWith('.py')), JSON.stringify(preview.files));
    assert.match(preview.diffstat, /files? changed/);
  });

  it('undoes to a checkpoint from the Checkpoints view, and redoes', async () => {
    const target = path.join(worktree, 'src', 'calc', 'add.py');
    const before = readFileSync(target, 'utf8');
    await vscode.window.showTextDocument(vscode.Uri.file(target));
    await api.views.checkpoints.load();
    const first = api.views.checkpoints.nodes().find((n) => n.checkpoint.number === 1 && !n.checkpoint.redo)!;
    await vscode.commands.executeCommand('adw.undoToCheckpoint', first);
    assert.equal(existsSync(target), false, 'checkpoint 1 predates add.py');
    await until('the checkpoints view to show a redo entry', async () => {
      await api.views.checkpoints.load();
      return api.views.checkpoints.nodes().some((n) => n.checkpoint.redo) || undefined;
    }, 30_000);
    await vscode.commands.executeCommand('adw.redo');
    assert.equal(readFileSync(target, 'utf8'), before);
  });

  it('scouts a task and lists file:line locations', async () => {
    const result = await vscode.commands.executeCommand<ScoutResult>('adw.scout', 'greeting message for a name');
    await vscode.commands.executeCommand('workbench.action.closeQuickOpen');
    assert.ok(result.locations.length > 0);
    assert.ok(result.locations.some((l) => l.path.includes('greet')), JSON.stringify(result.locations.slice(0, 3)));
  });

  it('runs agent phases where adw.executor and adw.rayAddress say, over [tool.adw]', async () => {
    // No cluster there (nothing listens on port 9): the agent phases fail at once, naming the address of the
    // setting (the steps still run in ADW's process).
    const settings = vscode.workspace.getConfiguration('adw');
    const raySpec = path.join(root, 'specs', 'ray.md');
    writeFileSync(raySpec, '# Ray\n\nNothing to build.\n');
    await settings.update('executor', 'ray', vscode.ConfigurationTarget.Workspace);
    await settings.update('rayAddress', '127.0.0.1:9', vscode.ConfigurationTarget.Workspace);
    try {
      const started = await vscode.commands.executeCommand<StartedWorkflows>('adw.startSdlc', vscode.Uri.file(raySpec));
      const id = started.workflows[0].id;
      const done = await until('the workflow on the cluster to end', () => {
        const wf = api.views.workflows.workflows.find((w) => w.id === id);
        return wf && wf.state !== 'running' && wf.state !== 'pending' ? wf : undefined;
      }, 150_000);
      const failed = done.tasks.find((t) => t.kind === 'agent' && t.state === 'failed');
      assert.match(failed?.reason ?? '', /no Ray cluster at 127\.0\.0\.1:9: nothing answers there/,
        JSON.stringify(done.tasks));
      assert.equal(done.tasks.find((t) => t.id === 'worktree')?.state, 'succeeded');
    } finally {
      await settings.update('executor', undefined, vscode.ConfigurationTarget.Workspace);
      await settings.update('rayAddress', undefined, vscode.ConfigurationTarget.Workspace);
      rmSync(raySpec, { force: true });
    }
  });

  it('cancels one task from its row, then resumes the workflow by id (a toast\'s Resume button)', async () => {
    // The review phase sleeps, so that it is still running when its row's cancel button is pressed.
    // (`.adw.toml` replaces pyproject's [tool.adw]: it keeps the demo's test command.)
    const config = path.join(root, '.adw.toml');
    const sleep = JSON.stringify([api.adw.interpreter!.path, '-c', 'import time; time.sleep(300)']);
    writeFileSync(config, '[agents]\ntest_command = ["python", "-m", "pytest", "-q"]\n\n'
      + `[phases.review]\nagent = "command"\ncommand = ${sleep}\nretries = 0\n`);
    try {
      const started = await vscode.commands.executeCommand<StartedWorkflows>('adw.startSdlc', undefined,
        [path.join(root, 'specs', 'multiply.md')]);
      const id = started.workflows[0].id;
      const review = await until('the review task to run', () => {
        const wf = api.views.workflows.workflows.find((w) => w.id === id);
        const node = wf && api.views.workflows.getChildren({ workflow: wf }).find((n) => n.task?.id === 'review');
        return node?.task?.state === 'running' ? node : undefined;
      }, 150_000);
      assert.equal(api.views.workflows.getTreeItem(review).contextValue, 'task.running'); // its cancel button's key
      await vscode.commands.executeCommand('adw.cancelTask', review);
      const stopped = await until('the workflow to stop', () => {
        const wf = api.views.workflows.workflows.find((w) => w.id === id);
        return wf && (wf.state === 'cancelled' || wf.state === 'failed') ? wf : undefined;
      }, 60_000);
      const states = Object.fromEntries(stopped.tasks.map((t) => [t.id, t.state]));
      assert.equal(states.review, 'cancelled');
      assert.equal(states.build, 'succeeded', 'only the review task was cancelled');
    } finally {
      rmSync(config, { force: true });
    }
    const id = api.views.workflows.workflows.find((w) => w.name === 'multiply')!.id;
    await vscode.commands.executeCommand('adw.resumeWorkflow', id);
    const done = await until('the resumed workflow to finish', () => {
      const wf = api.views.workflows.workflows.find((w) => w.id === id);
      return wf && wf.state !== 'running' && wf.state !== 'pending' && wf.state !== 'cancelled' ? wf : undefined;
    }, 150_000);
    assert.equal(done.state, 'succeeded', done.reason);
  });

  it('sends a follow-up to a task\'s agent and a review comment with its lines, streaming the transcript', async () => {
    // The document phase of the greet spec runs the scripted ACP agent of the Python tests, which keeps its sessions.
    const fake = path.resolve(__dirname, '..', '..', '..', '..', 'tests', 'fakes', 'acp_agent.py');
    const sessions = mkdtempSync(path.join(os.tmpdir(), 'adw-acp-sessions-'));
    const config = path.join(root, '.adw.toml');
    writeFileSync(config, ['[agents]', 'test_command = ["python", "-m", "pytest", "-q"]', '', '[phases.document]',
      'agent = "acp"', `command = ${JSON.stringify([api.adw.interpreter!.path, fake, '--sessions', sessions])}`,
      'prompt = "recall"', 'retries = 0', ''].join('\n'));
    try {
      const started = await vscode.commands.executeCommand<StartedWorkflows>('adw.startSdlc',
        vscode.Uri.file(path.join(root, 'specs', 'greet.md')));
      const id = started.workflows[0].id;
      const attemptsOf = (wf: Workflow) =>
        (wf.tasks.find((t) => t.id === 'document') as { attempts?: unknown[] } | undefined)?.attempts?.length;
      const finished = (attempts: number) => until(`attempt ${attempts} of document to end`, () => {
        const wf = api.views.workflows.workflows.find((w) => w.id === id);
        return wf && wf.state !== 'running' && wf.state !== 'pending' && attemptsOf(wf) === attempts ? wf : undefined;
      }, 150_000);
      const done: Workflow = await finished(1);
      assert.equal(done.state, 'succeeded', done.reason);
      const documentTask = done.tasks.find((t) => t.id === 'document')!;
      assert.deepEqual(documentTask.session, { agent: 'acp', id: 'fake-session-1' });
      assert.equal(api.views.workflows.getTreeItem({ workflow: done, task: documentTask }).contextValue,
        'task.succeeded.session');

      const sent = await vscode.commands.executeCommand<CommandResults['followUp']>('adw.sendFollowUp',
        { workflow: done, task: documentTask }, 'recall the docs');
      assert.equal(sent.workflow, id);
      assert.equal(sent.task, 'document');
      assert.equal(sent.attempt, 2);
      assert.ok(sent.stale.includes('commit'), sent.stale.join(', '));
      // The transcript streams into its output channel (an `output:` document) as the agent works.
      const transcript = await until('the transcript', () => vscode.workspace.textDocuments.find((d) =>
        d.uri.scheme === 'output' && d.getText().includes('session fake-session-1 heard 1 prompt(s) before')), 60_000);
      assert.match(transcript.getText(), /started acp \(attempt 2\)/);
      await finished(2);

      // A review comment on two lines of the file the build wrote.
      const file = path.join(`${root}.worktrees`, 'greet', 'src', 'calc', 'greet.py');
      const thread = { uri: vscode.Uri.file(file), range: new vscode.Range(0, 0, 2, 0), comments: [] as vscode.Comment[],
        label: undefined as string | undefined };
      const asked = await vscode.commands.executeCommand<CommandResults['followUp']>('adw.askAgent',
        { thread, text: 'recall the greeting' });
      assert.equal(asked.attempt, 3);
      assert.equal(thread.label, 'Asked document to change lines 1–2');
      assert.deepEqual(thread.comments.map((c) => c.author.name), ['You', 'ADW']);
      await finished(3);
      const stored = await vscode.commands.executeCommand<{ tasks: { id: string; attempts: { follow_up: unknown }[] }[] }>(
        'adw.server.status', id);
      const lines = readFileSync(file, 'utf8').split('\n').slice(0, 2).join('\n');
      assert.deepEqual(stored.tasks.find((t) => t.id === 'document')!.attempts[2].follow_up, {
        message: 'recall the greeting',
        location: { file: 'src/calc/greet.py', start_line: 1, end_line: 2, selected_code: lines },
      });
    } finally {
      rmSync(config, { force: true });
      rmSync(sessions, { recursive: true, force: true });
    }
  });

  it('restarts the server on ADW: Restart Server and when adw.python changes', async () => {
    await vscode.commands.executeCommand('adw.restartServer');
    assert.equal(api.adw.state, 'running');
    const settings = vscode.workspace.getConfiguration('adw');
    const python = settings.get<string>('python')!;
    await settings.update('python', path.join(root, 'no-such-python'), vscode.ConfigurationTarget.Workspace);
    await until('the server to fail on a missing interpreter', () => api.adw.state === 'failed' || undefined, 30_000);
    await settings.update('python', undefined, vscode.ConfigurationTarget.Workspace);
    await until('the server to run again', () => api.adw.state === 'running' || undefined, 60_000);
    assert.equal(api.adw.interpreter?.path, python);
  });
});
