// End-to-end in the real workbench: code-server on 127.0.0.1 with the packaged adw.vsix installed, driven by
// playwright-core controlling Debian's chromium. Runs "ADW: Start Parallel SDLC" from the palette on a demo
// repository, watches the Workflows view fill and finish, then edits a file of the new worktree and reverts
// it with the Undo code lens; an edit then takes the Redo lens away, and a failed "ADW: Redo" shows one toast.
// "ADW: Show Run Timeline", opened while the two workflows run (two agent slots, so some tasks wait for one),
// follows them live to the end; a click on a bar opens that task's log.
// Then: a checkpoint's file opens VS Code's diff editor while the Checkpoints view stays on its worktree, and
// two checkpoints are compared; the merge dialog lists the files and a predicted conflict with another
// worktree; a scout fills the References view on an indented top hit while its picker stays open; the spec
// lens on a spec whose worktree exists gets one toast whose "Remove and Rerun" button reruns it; a running
// task is cancelled from its row, and the "Resume" button of the run's notification resumes the workflow.
// Screenshots of these moments go to docs/images/ (ADW_SCREENSHOTS overrides).
import { execFileSync } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  CODE_SERVER_DIR, EXTENSION_DIR, PYTHON, freePort, launchBrowser, makeDemoRepo, makeProfile, requireCodeServer,
  startServer,
} from './common.mjs';

requireCodeServer();
const SHOTS = resolve(process.env.ADW_SCREENSHOTS || join(EXTENSION_DIR, '..', 'docs', 'images'));
const VSIX = resolve(process.env.ADW_VSIX || join(EXTENSION_DIR, 'adw.vsix'));
const CODE_SERVER = join(CODE_SERVER_DIR, 'node_modules', '.bin', 'code-server');
mkdirSync(SHOTS, { recursive: true });

const port = freePort();
// Two agent slots: some tasks wait for one (the timeline's queued bars; the aggregated progress).
const profile = makeProfile({ 'adw.maxAgents': 2 });
const repo = makeDemoRepo(profile.root);
// A class whose method is the scout's top hit for "area of a circle": an indented line (`    def area`).
mkdirSync(join(repo, 'src', 'calc'), { recursive: true });
writeFileSync(join(repo, 'src', 'calc', 'shapes.py'), '"""Shapes and their areas."""\n\nimport math\n\n\n'
  + 'class Circle:\n    def __init__(self, radius: float) -> None:\n        self.radius = radius\n\n'
  + '    def area(self) -> float:\n        return math.pi * self.radius**2\n');
execFileSync('git', ['add', '-A'], { cwd: repo });
execFileSync('git', ['-c', 'user.name=ADW e2e', '-c', 'user.email=e2e@adw.invalid', 'commit', '-qm', 'shapes'],
  { cwd: repo });
const dirs = ['--user-data-dir', profile.userDataDir, '--extensions-dir', profile.extensionsDir,
  '--config', join(profile.root, 'config.yaml')];
execFileSync(CODE_SERVER, [...dirs, '--install-extension', VSIX], { env: profile.env, stdio: 'inherit' });
const serverLog = join(profile.root, 'server.log');
const server = await startServer(CODE_SERVER, ['--bind-addr', `127.0.0.1:${port}`, '--auth', 'none',
  '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', ...dirs],
profile.env, port, openSync(serverLog, 'w'));
const browser = await launchBrowser(profile.env);
const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
const started = Date.now();
const step = (text) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${text}`);
const shot = async (name) => {
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
  step(`screenshot ${name}.png`);
};

/** Extension commands reach the palette a few seconds after the workbench renders: retry until listed. */
async function palette(title, run = true) {
  for (const t0 = Date.now(); ;) {
    await page.keyboard.press('F1');
    await page.locator('.quick-input-widget input').fill(`>${title}`);
    try {
      await page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first().waitFor({ timeout: 2000 });
      if (run) await page.keyboard.press('Enter');
      return;
    } catch {
      await page.keyboard.press('Escape');
      if (Date.now() - t0 > 60_000) throw new Error(`command "${title}" never appeared in the palette`);
    }
  }
}

const view = (name) => page.locator('.pane', { has: page.locator('.pane-header', { hasText: name }) });
const row = (pane, text) => pane.locator('.monaco-list-row', { hasText: text });
const lens = (text) => page.locator('.monaco-editor .codelens-decoration a', { hasText: text });
/** Runs a context menu's item: hovered (which focuses it), then Enter — a click can land while the menu settles. */
async function menuItem(text) {
  const item = page.locator('.monaco-menu .action-label', { hasText: text });
  await item.hover();
  await page.keyboard.press('Enter');
  await item.waitFor({ state: 'detached', timeout: 10_000 });
}

let failed = false;
try {
  await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(repo)}`);
  await page.locator('#workbench\\.parts\\.statusbar').waitFor({ timeout: 60_000 });
  step('workbench ready');

  // The active spec is pre-selected in the picker.
  await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'specs' }).click();
  await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'add.md' }).click();
  await lens('Start Parallel SDLC').waitFor({ timeout: 60_000 });
  step('spec open, lenses shown');
  await palette('ADW: Start Parallel SDLC', false);
  await shot('vscode-palette');
  await page.keyboard.press('Enter');
  await page.locator('.quick-input-widget .quick-input-list .monaco-list-row', { hasText: 'multiply.md' })
    .waitFor({ timeout: 30_000 });
  await page.locator('.quick-input-widget .quick-input-list .monaco-list-row', { hasText: 'greet.md' }).click();
  await shot('vscode-spec-picker');
  await page.keyboard.press('Enter');

  // Each workflow lists nine tasks: give the Workflows view the Checkpoints view's height, so that both
  // workflows stay on screen (the tree renders only the rows in view).
  const checkpoints = view('Checkpoints').locator('.pane-header');
  await checkpoints.waitFor({ timeout: 30_000 });
  if ((await checkpoints.getAttribute('aria-expanded')) === 'true') await checkpoints.click();
  const workflows = view('Workflows');
  await row(workflows, 'add').first().waitFor({ timeout: 30_000 });
  await row(workflows, 'greet').first().waitFor({ timeout: 30_000 });
  step('workflows listed');
  await row(workflows, 'plan').first().waitFor({ timeout: 30_000 });
  await shot('vscode-workflows-running');

  // The timeline of the run, opened while it goes on: one picker row for the two workflows started together.
  await palette('ADW: Show Run Timeline');
  await page.locator('.quick-input-widget .quick-input-list .monaco-list-row', { hasText: 'greet' })
    .waitFor({ timeout: 30_000 });
  await page.keyboard.press('Enter');
  const timeline = page.frameLocator('iframe.webview.ready').frameLocator('#active-frame');
  await timeline.locator('.adw-bar').first().waitFor({ timeout: 30_000 });
  step('timeline open while the run goes on');
  await page.locator('.statusbar-item', { hasText: 'ADW' }).first().waitFor();

  // Both workflows finish: their rows' descriptions turn to "succeeded".
  for (const name of ['add', 'greet']) {
    await workflows.locator('.monaco-list-row[aria-level="1"]', { hasText: name })
      .filter({ hasText: 'succeeded' }).waitFor({ timeout: 180_000 });
  }
  step('workflows succeeded');

  // The open timeline followed the run to its end (adw/changed), without being opened again.
  await timeline.locator('svg.adw-timeline[data-live="false"]').waitFor({ timeout: 30_000 });
  const bars = await timeline.locator('.adw-bar').evaluateAll((rects) => rects.map((r) => ({
    workflow: r.dataset.workflow, task: r.dataset.task, state: r.dataset.state, critical: r.dataset.critical,
  })));
  const lanes = [...new Set(bars.map((b) => b.workflow.replace(/-[0-9a-f]+$/, '')))].sort();
  const done = bars.filter((b) => b.state === 'succeeded');
  const unexpected = bars.filter((b) => !['succeeded', 'queued'].includes(b.state));
  if (lanes.join() !== 'add,greet' || done.length !== 18 || unexpected.length || !bars.some((b) => b.critical === 'true')) {
    throw new Error(`timeline bars: ${JSON.stringify(bars)}`);
  }
  // Two agent slots for six parallel phases (test ‖ review ‖ document of each): some waited for one.
  if (!bars.some((b) => b.state === 'queued')) throw new Error(`no task waited for a slot: ${JSON.stringify(bars)}`);
  await timeline.locator('#figures li', { hasText: 'speedup' }).waitFor();
  await shot('vscode-timeline');
  await timeline.locator('.adw-bar[data-task="build"][data-state="succeeded"]').first().click();
  await page.locator('.tab', { hasText: /· build\.log/ }).waitFor({ timeout: 30_000 });
  step(`timeline: ${bars.length} bars, ${bars.filter((b) => b.state === 'queued').length} waits; a bar opened its log`);
  await row(view('Worktrees'), 'adw/add').waitFor({ timeout: 30_000 });
  await shot('vscode-workflows-done');

  // Open a file of the new worktree (outside the workspace folder): Quick Open takes absolute paths.
  const file = `${repo}.worktrees/add/src/calc/add.py`;
  await page.keyboard.press('F1');
  await page.locator('.quick-input-widget input').fill(file);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: 'add.py' }).first().waitFor({ timeout: 30_000 });
  await page.keyboard.press('Enter');
  await page.locator('.tab', { hasText: 'add.py' }).waitFor({ timeout: 30_000 });
  step('worktree file open');

  // Checkpoint now (checkpoint N+1), break the file and save, then the lens offers "Undo to checkpoint N+1".
  const before = await lens('Undo to checkpoint').first().textContent({ timeout: 30_000 });
  const next = `Undo to checkpoint ${Number(/checkpoint (\d+)/.exec(before)[1]) + 1}`;
  await lens('Checkpoint').last().click();
  const original = readFileSync(file, 'utf8');
  await page.locator('.monaco-editor .view-lines').first().click();
  await page.keyboard.press('Control+Home');
  await page.keyboard.type('raise SystemExit("broken by hand")\n');
  await page.keyboard.press('Control+S');
  for (let i = 0; readFileSync(file, 'utf8') === original; i++) {
    if (i > 100) throw new Error('the edit was not saved');
    await new Promise((r) => setTimeout(r, 100));
  }
  await page.locator('.monaco-editor .view-line', { hasText: 'broken by hand' }).waitFor();
  await lens(next).waitFor({ timeout: 30_000 });
  await page.waitForTimeout(500);
  await shot('vscode-undo-lens');
  await lens(next).click();
  for (let i = 0; readFileSync(file, 'utf8') !== original; i++) {
    if (i > 300) throw new Error('the Undo lens did not revert the file');
    await new Promise((r) => setTimeout(r, 100));
  }
  step('file reverted on disk');
  await page.locator('.monaco-editor .view-line', { hasText: 'broken by hand' }).waitFor({ state: 'detached', timeout: 30_000 });
  await page.locator('.monaco-editor .view-line', { hasText: 'def add' }).waitFor();
  await lens('Redo').waitFor({ timeout: 30_000 });
  await shot('vscode-undo-reverted');

  // An edit leaves the restored checkpoint, after which redo would be refused: the Redo lens goes at once.
  await page.locator('.monaco-editor .view-lines').first().click();
  await page.keyboard.press('Control+End');
  await page.keyboard.type('# edited after the undo\n');
  await lens('Redo').waitFor({ state: 'detached', timeout: 30_000 });
  step('Redo lens gone after an edit');
  await shot('vscode-lenses');

  // Saved, the edit makes "ADW: Redo" fail: one toast, in editor words, not three.
  await page.keyboard.press('Control+S');
  // Earlier toasts ("started 2 workflows") may still be up on a fast machine: count only this failure's.
  await palette('Notifications: Clear All Notifications');
  const toasts = page.locator('.notifications-toasts .notification-toast');
  await toasts.first().waitFor({ state: 'detached', timeout: 10_000 });
  await palette('ADW: Redo');
  await toasts.filter({ hasText: 'redo would overwrite' }).waitFor({ timeout: 30_000 });
  await page.waitForTimeout(2000); // a second or third toast of the same failure would show by now
  const texts = await toasts.locator('.notification-list-item-message').allTextContents();
  if (texts.length !== 1 || /Request workspace|`adw |--/.test(texts[0])) {
    throw new Error(`expected one editor-worded toast for the failed redo, got ${JSON.stringify(texts)}`);
  }
  await shot('vscode-one-error-toast');
  step('one toast for a failed command');
  await palette('Notifications: Clear All Notifications');

  // The Checkpoints view (the add.py of worktree add is the active editor): a checkpoint unfolds into the files
  // changed since; a file opens VS Code's diff editor, and the view stays on worktree add meanwhile.
  const workflowsHeader = workflows.locator('.pane-header');
  if ((await workflowsHeader.getAttribute('aria-expanded')) === 'true') await workflowsHeader.click();
  await checkpoints.click();
  const checkpointsView = view('Checkpoints');
  await checkpointsView.locator('.pane-header .description', { hasText: 'add' }).waitFor({ timeout: 30_000 });
  const oldest = checkpointsView.locator('.monaco-list-row[aria-level="1"]').last();
  const oldestLabel = (await oldest.textContent()) ?? '';
  const oldestNumber = Number(/(\d+)\./.exec(oldestLabel)?.[1]);
  await oldest.click();
  await checkpointsView.locator('.monaco-list-row[aria-level="2"]', { hasText: 'add.py' }).first().click();
  await page.locator('.monaco-diff-editor').first().waitFor({ timeout: 30_000 });
  await page.locator('.tab', { hasText: `add.py (checkpoint ${oldestNumber} ↔ now)` }).waitFor({ timeout: 30_000 });
  await page.waitForTimeout(1000); // a view that followed the diff editor would have switched by now
  const described = await checkpointsView.locator('.pane-header .description').textContent();
  if (described?.trim() !== 'add') throw new Error(`the Checkpoints view left worktree add: "${described}"`);
  await shot('vscode-checkpoint-diff');
  step('native diff of a checkpoint; the view stays on its worktree');

  // Any two checkpoints: "Select for Compare" on the oldest, "Compare with Selected" on the newest.
  await oldest.click({ button: 'right' });
  await menuItem('Select for Compare');
  await checkpointsView.locator('.monaco-list-row[aria-level="1"]', { hasText: 'selected for compare' })
    .waitFor({ timeout: 10_000 });
  const newest = checkpointsView.locator('.monaco-list-row[aria-level="1"]').first();
  const newestNumber = Number(/(\d+)\./.exec((await newest.textContent()) ?? '')?.[1]);
  await newest.click({ button: 'right' });
  await menuItem('Compare with Selected');
  await page.locator('.tab', { hasText: `checkpoint ${oldestNumber} ↔ checkpoint ${newestNumber}` })
    .waitFor({ timeout: 30_000 });
  await page.waitForTimeout(1500); // the multi-file diff editor renders its files
  await shot('vscode-checkpoint-compare');
  step('two checkpoints compared');

  // A conflicting add.py checkpointed in worktree greet: the merge dialog of add lists its files, the diffstat
  // and the conflict predicted with greet, before any button merges.
  const greet = `${repo}.worktrees/greet`;
  writeFileSync(join(greet, 'src', 'calc', 'add.py'), 'def add(a, b):\n    return "not a sum"\n');
  execFileSync(PYTHON, ['-m', 'adw', '-C', greet, 'checkpoint', '-m', 'a different add.py'], { stdio: 'ignore' });
  await row(view('Worktrees'), 'conflicts with greet').first().waitFor({ timeout: 60_000 });
  await palette('ADW: Merge Worktree');
  await page.locator('.quick-input-list .monaco-list-row', { hasText: 'add' }).first().click();
  const dialog = page.locator('.monaco-dialog-box');
  await dialog.waitFor({ timeout: 30_000 });
  const detail = (await dialog.locator('.dialog-message-detail').textContent()) ?? '';
  for (const expected of ['src/calc/add.py', 'file(s) changed', 'conflicts with 1 other active worktree', 'greet:']) {
    if (!detail.includes(expected)) throw new Error(`the merge dialog does not say "${expected}": ${detail}`);
  }
  await shot('vscode-merge-dialog');
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached', timeout: 10_000 });
  step('merge dialog: files, diffstat and the predicted conflict');

  // Scout: the References view fills on the indented top hit (`    def area`) and the picker stays open.
  await palette('ADW: Scout');
  await page.locator('.quick-input-widget input').fill('area of a circle');
  await page.keyboard.press('Enter');
  const scoutPicker = page.locator('.quick-input-widget', { hasText: 'ADW: Scout — area of a circle' });
  await scoutPicker.waitFor({ timeout: 60_000 });
  const sidebar = page.locator('#workbench\\.parts\\.sidebar');
  await sidebar.locator('.monaco-list-row', { hasText: 'line 10' }).waitFor({ timeout: 30_000 });
  await page.waitForTimeout(1000); // a picker the view's focus closed would be gone by now
  if (!(await scoutPicker.isVisible())) throw new Error('the References view closed the scout picker');
  await scoutPicker.locator('.monaco-list-row', { hasText: 'shapes.py:10' }).first().waitFor();
  await shot('vscode-scout-references');
  await page.keyboard.press('Escape');
  step('References view on the indented top hit, picker still open');

  // The spec lens on add.md, whose worktree exists: one toast, and its "Remove and Rerun" button reruns the spec.
  // The review phase of that run sleeps, so that it can be cancelled from its row.
  // (`.adw.toml` replaces pyproject's [tool.adw]: it keeps the demo's test command.)
  writeFileSync(join(repo, '.adw.toml'), '[agents]\ntest_command = ["python", "-m", "pytest", "-q"]\n\n'
    + `[phases.review]\nagent = "command"\n`
    + `command = ${JSON.stringify([PYTHON, '-c', 'import time; time.sleep(300)'])}\nretries = 0\n`);
  await palette('Notifications: Clear All Notifications');
  await page.keyboard.press('F1');
  await page.locator('.quick-input-widget input').fill(join(repo, 'specs', 'add.md'));
  await page.locator('.quick-input-list .monaco-list-row', { hasText: 'add.md' }).first().waitFor({ timeout: 30_000 });
  await page.keyboard.press('Enter');
  await lens('Start Parallel SDLC').first().click({ timeout: 60_000 });
  const exists = toasts.filter({ hasText: 'a worktree exists' });
  await exists.waitFor({ timeout: 30_000 });
  await page.waitForTimeout(2000);
  const toastTexts = await toasts.locator('.notification-list-item-message').allTextContents();
  if (toastTexts.length !== 1) throw new Error(`expected one toast, got ${JSON.stringify(toastTexts)}`);
  await shot('vscode-toast-actions');
  await exists.locator('.monaco-button', { hasText: 'Remove and Rerun' }).click();
  step('"Remove and Rerun" on the failure toast');

  // The rerun shows in the Workflows view (the lens's run gets the palette's focus); its review task runs:
  // its row's cancel button cancels that task only, and the workflow stops early.
  await workflowsHeader.waitFor();
  if ((await workflowsHeader.getAttribute('aria-expanded')) !== 'true') await workflowsHeader.click();
  if ((await checkpoints.getAttribute('aria-expanded')) === 'true') await checkpoints.click();
  const review = workflows.locator('.monaco-list-row[aria-level="2"]', { hasText: 'review' })
    .filter({ hasText: 'running' });
  await review.waitFor({ timeout: 180_000 });
  // One aggregated progress in the status bar ("ADW: 1/1 agents"), not one per task.
  await page.locator('#workbench\\.parts\\.statusbar', { hasText: /\d+\/\d+ agents/ }).waitFor({ timeout: 30_000 });
  await review.hover();
  await shot('vscode-task-cancel');
  await review.locator('.action-label[aria-label="Cancel Task"]').click();
  rmSync(join(repo, '.adw.toml')); // the resumed review runs the demo's own reviewer
  const stopped = toasts.filter({ hasText: 'add cancelled' });
  await stopped.waitFor({ timeout: 60_000 });
  step('task cancelled from its row; the notification offers Resume');
  await shot('vscode-resume-toast');
  await stopped.locator('.monaco-button', { hasText: 'Resume' }).click();
  await toasts.filter({ hasText: 'resuming add' }).waitFor({ timeout: 30_000 });
  // Newest first: the resumed run is the top row. Then no agent runs in worktree add any more.
  await workflows.locator('.monaco-list-row[aria-level="1"]').first().filter({ hasText: 'add' })
    .filter({ hasText: 'succeeded' }).waitFor({ timeout: 180_000 });
  await row(view('Worktrees'), 'adw/add').filter({ hasNotText: 'agent' }).waitFor({ timeout: 30_000 });
  await page.waitForTimeout(1000); // the spec's status lens goes with the next lens refresh
  await shot('vscode-workflows-resumed');
  step('Resume Workflow ran the cancelled run to the end');
  step('PASS');
} catch (error) {
  failed = true;
  console.error(error);
  await page.screenshot({ path: join(profile.root, 'failure.png') }).catch(() => {});
  console.error(`failure screenshot: ${join(profile.root, 'failure.png')}; server log: ${serverLog}`);
} finally {
  await browser.close();
  await server.stop();
}
process.exit(failed ? 1 : 0);
