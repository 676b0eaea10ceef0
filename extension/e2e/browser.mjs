// End-to-end in the real workbench: code-server on 127.0.0.1 with the packaged adw.vsix installed, driven by
// playwright-core controlling Debian's chromium. Runs "ADW: Start Parallel SDLC" from the palette on a demo
// repository, watches the Workflows view fill and finish, then edits a file of the new worktree and reverts
// it with the Undo code lens; an edit then takes the Redo lens away, and a failed "ADW: Redo" shows one toast.
// "ADW: Show Run Timeline", opened while the two workflows run (two agent slots, so some tasks wait for one),
// follows them live to the end; a click on a bar opens that task's log. The document phase runs the scripted ACP
// agent of the Python tests (tests/fakes/acp_agent.py), so its session takes a review comment on a changed file
// ("Ask the Agent to Change This") as a follow-up, whose transcript streams into an output channel.
// Then: a checkpoint's file opens VS Code's diff editor while the Checkpoints view stays on its worktree, and
// two checkpoints are compared; the merge dialog lists the files and a predicted conflict with another
// worktree; a scout fills the References view on an indented top hit while its picker stays open; the spec
// lens on a spec whose worktree exists gets one toast whose "Remove and Rerun" button reruns it; a running
// task is cancelled from its row, and the "Resume" button of the run's notification resumes the workflow.
// Then the forge and best of N, against a local fake GitHub (tests/forge/fakeforge.py, the repository's
// `[tool.adw.forge] api_url`, a token in the environment, a bare repository as the push URL): "ADW: Create Pull
// Request" on a finished workflow, "ADW: Run SDLC from Issue…" from an issue number to a draft pull request, and
// three candidates of one spec (one with a regression) ranked in the Candidates view, a diff opened, one picked and
// the others archived. Last, an ACP agent's permission questions answered from their notifications' buttons.
// Screenshots of these moments go to docs/images/ (ADW_SCREENSHOTS overrides).
import { execFileSync, spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
// Two agent slots: some tasks wait for one (the timeline's queued bars, the aggregated progress's "waiting").
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
// An agent that keeps sessions for the document phase: what a review comment is sent to.
const sessions = join(profile.root, 'acp-sessions');
mkdirSync(sessions);
const fakeAcp = [PYTHON, join(EXTENSION_DIR, '..', 'tests', 'fakes', 'acp_agent.py'), '--sessions', sessions];
writeFileSync(join(repo, '.adw.toml'), '[agents]\ntest_command = ["python", "-m", "pytest", "-q"]\n\n'
  + `[phases.document]\nagent = "acp"\ncommand = ${JSON.stringify(fakeAcp)}\nprompt = "recall"\nretries = 0\n`);
const forge = await startFakeForge(profile.root);
setUpForgeAndCandidates(repo, profile.root, forge.url);
profile.env.GH_TOKEN = 'e2e-token';
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
    try {
      // F1 can land while focus moves (a quick pick closing, a webview): then no palette opens, and it is pressed again.
      await page.keyboard.press('F1');
      await page.locator('.quick-input-widget input').fill(`>${title}`, { timeout: 5000 });
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
/** Drags the side bar's edge so that it is `width` pixels wide. */
async function sideBarWidth(width) {
  const bar = await page.locator('#workbench\\.parts\\.sidebar').boundingBox();
  await page.mouse.move(bar.x + bar.width + 1, 400);
  await page.mouse.down();
  await page.mouse.move(bar.x + width, 400, { steps: 5 });
  await page.mouse.up();
}
const lens = (text) => page.locator('.monaco-editor .codelens-decoration a', { hasText: text });
/** Runs a context menu's item: hovered (which focuses it), then Enter — a click can land while the menu settles. */
async function menuItem(text) {
  const item = page.locator('.monaco-menu .action-label', { hasText: text });
  await item.hover();
  await page.keyboard.press('Enter');
  await item.waitFor({ state: 'detached', timeout: 10_000 });
}

/** Clicks `target` until `shown` appears (three tries): a click that lands while its view redraws does nothing. */
async function clickUntil(target, shown) {
  for (let attempt = 1; ; attempt++) {
    await target.click();
    try {
      await shown.waitFor({ timeout: 10_000 });
      return;
    } catch (error) {
      if (attempt === 3) throw error;
    }
  }
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

  // The run's end notification (from the notification center, whether or not its toast is still up): "Show
  // Changes" opens what greet changed, from the commit its worktree started at, in the multi-file diff editor.
  await palette('Notifications: Show Notifications');
  const greetEnded = page.locator('.notifications-center .notification-list-item', { hasText: 'ADW: greet succeeded' });
  await greetEnded.locator('.monaco-button', { hasText: 'Show Changes' }).click({ timeout: 30_000 });
  await page.locator('.tab', { hasText: 'greet: changes' }).waitFor({ timeout: 30_000 });
  await page.locator('.monaco-diff-editor').first().waitFor({ timeout: 30_000 });
  await page.waitForTimeout(1000);
  await shot('vscode-run-changes');
  await palette('Notifications: Clear All Notifications');
  step('a run\'s end notification shows its changes');

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

  // A review comment on the function of the file the build wrote goes to the agent of the workflow (its document
  // phase, whose ACP session the follow-up continues), with the file, the lines and the code there.
  await palette('Notifications: Clear All Notifications');
  await page.locator('.monaco-editor .view-lines').first().click();
  await page.keyboard.press('Control+Home');
  for (const key of ['ArrowDown', 'ArrowDown', 'ArrowDown', 'Shift+ArrowDown', 'Shift+ArrowDown']) {
    await page.keyboard.press(key);  // lines 4-5: the function
  }
  await palette('Comments: Add Comment on Current Selection');
  const form = page.locator('.review-widget .comment-form').first();
  await form.locator('textarea').waitFor({ timeout: 30_000 });
  await form.locator('textarea').fill('recall what you were asked about this function');
  await shot('vscode-review-comment');
  await page.locator('.review-widget').getByRole('button', { name: 'Ask the Agent to Change This' }).click();
  await page.locator('.notification-toast', { hasText: 'follow-up sent to document of add (attempt 2)' })
    .waitFor({ timeout: 60_000 });
  await page.locator('.review-widget', { hasText: 'Sent to document (acp), attempt 2' }).waitFor({ timeout: 30_000 });
  // The transcript streams into its output channel while the agent works: the agent's answer shows there. VS Code
  // may open its Comments panel over it for a file's first comment thread ("comments.openView"): back to Output.
  const outputTab = page.locator('.part.panel .composite-bar .action-label', { hasText: /^output$/i });
  if (await outputTab.count()) await outputTab.first().click();
  await page.locator('.part.panel .view-line', { hasText: 'heard 1 prompt(s) before' }).first()
    .waitFor({ timeout: 60_000 });
  await page.waitForTimeout(500);
  await shot('vscode-follow-up');
  step('review comment sent as a follow-up, transcript streamed');

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
  // From the row's menu: the inline button is redrawn every second while tasks run, and a click that lands on
  // a redraw reaches the command without its row (then it asks which task).
  await review.click({ button: 'right' });
  await menuItem('Cancel Task');
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

  // -- the forge: Create Pull Request on the finished `greet` workflow ------------------------------------
  // The panes as the forge steps read them: Worktrees and Workflows open, Checkpoints folded.
  for (const [name, open] of [['Worktrees', true], ['Workflows', true], ['Checkpoints', false]]) {
    const header = view(name).locator('.pane-header');
    if (((await header.getAttribute('aria-expanded')) === 'true') !== open) await header.click();
  }
  await sideBarWidth(520); // wide enough for the rows' pull requests
  await palette('Notifications: Clear All Notifications');
  await palette('ADW: Create Pull Request');
  await page.locator('.quick-input-widget .quick-input-list .monaco-list-row', { hasText: 'greet' })
    .waitFor({ timeout: 30_000 });
  await page.locator('.quick-input-widget input').fill('greet');
  await page.keyboard.press('Enter');
  await toasts.filter({ hasText: 'Opened draft pull request #1 for greet' }).waitFor({ timeout: 60_000 });
  await page.waitForTimeout(500);
  const [pr] = await forge.pulls('adw/greet');
  if (!pr?.draft || pr.base.ref !== 'main') throw new Error(`expected a draft of adw/greet on the fake forge: ${JSON.stringify(pr)}`);
  await row(view('Worktrees'), 'PR #1 draft').waitFor({ timeout: 30_000 });
  await shot('vscode-pull-request');
  step('Create Pull Request opened the draft');

  // -- from an issue number to a draft pull request -----------------------------------------------------------
  await palette('Notifications: Clear All Notifications');
  await palette('ADW: Run SDLC from Issue');
  await page.locator('.quick-input-widget', { hasText: 'The number or URL of an issue' }).waitFor({ timeout: 10_000 });
  await page.locator('.quick-input-widget input').fill('7');
  await page.keyboard.press('Enter');
  await page.locator('.quick-input-list .monaco-list-row', { hasText: 'open a draft pull request' }).waitFor();
  await shot('vscode-issue-command');
  await page.keyboard.press('Enter');
  await workflows.locator('.monaco-list-row[aria-level="1"]', { hasText: '7-subtract-numbers' })
    .filter({ hasText: 'succeeded' }).waitFor({ timeout: 180_000 });
  await toasts.filter({ hasText: 'opened draft pull request #2 for 7-subtract-numbers' }).waitFor({ timeout: 60_000 });
  await row(view('Worktrees'), 'PR #2 draft').waitFor({ timeout: 30_000 });
  // The draft's toast is the run's end: no second "succeeded — Merge…" toast for a run that ends in a pull request.
  if (await toasts.filter({ hasText: '7-subtract-numbers succeeded' }).count()) throw new Error('two toasts for one end');
  const [fromIssue] = await forge.pulls('adw/7-subtract-numbers');
  if (!fromIssue?.draft || !fromIssue.body.includes('Closes #7')) {
    throw new Error(`expected the issue's draft on the fake forge: ${JSON.stringify(fromIssue)}`);
  }
  await page.waitForTimeout(500);
  await shot('vscode-issue-pull-request');
  step('Run SDLC from Issue ended in a draft pull request');

  // -- best of 3: ranked, a diff, a pick ----------------------------------------------------------------------
  // Candidate 1 applies the spec, 2 breaks multiply (its tests fail: a regression), 3 writes less.
  execFileSync(PYTHON, ['-m', 'adw', 'sdlc', 'specs/multiply.md', '--best-of', '3',
    '--agents', 'spec-apply,command,command', '--models', 'spec,broken,lean'], { cwd: repo, env: profile.env, stdio: 'inherit' });
  step('three candidates made');
  // The views learn of the candidates (run by another process) and toast their ends; cleared before comparing.
  await palette('ADW: Show Status');
  await page.locator('.quick-input-list .monaco-list-row', { hasText: 'multiply-3' }).waitFor({ timeout: 30_000 });
  await page.keyboard.press('Escape');
  await toasts.filter({ hasText: 'multiply-2 failed' }).waitFor({ timeout: 30_000 });
  await palette('Notifications: Clear All Notifications');
  for (const name of ['Worktrees', 'Workflows']) {
    const header = view(name).locator('.pane-header');
    if ((await header.getAttribute('aria-expanded')) === 'true') await header.click();
  }
  await sideBarWidth(740); // each candidate's row shows all it is ranked by
  await palette('ADW: Compare Candidates');
  const candidates = view('Candidates');
  const ranked = candidates.locator('.monaco-list-row[aria-level="1"]');
  await ranked.filter({ hasText: '3. candidate 2' }).waitFor({ timeout: 30_000 });
  const order = (await ranked.allTextContents()).map((text) => /\d\. candidate \d/.exec(text)?.[0]);
  if (order.join('|') !== '1. candidate 3|2. candidate 1|3. candidate 2') throw new Error(`ranking: ${order}`);
  await ranked.filter({ hasText: '3. candidate 2' }).filter({ hasText: '2 new failures' }).waitFor();
  await row(candidates, 'below #1: more new test failures (2 vs 0)').waitFor();
  await page.waitForTimeout(500);
  await shot('vscode-candidates');
  step('candidates ranked, the regression last');

  await sideBarWidth(420); // room for the diff
  await row(candidates, 'multiply.py').first().click();
  await page.locator('.tab', { hasText: 'base ↔ candidate 3' }).waitFor({ timeout: 30_000 });
  await page.locator('.monaco-diff-editor .view-line', { hasText: 'def multiply' }).first().waitFor({ timeout: 30_000 });
  await page.waitForTimeout(500);
  await shot('vscode-candidate-diff');
  step('a candidate\'s diff opened');
  // All its files in one multi-file diff editor. From the row's menu, as for Cancel Task: the view redraws when
  // the server reports a change, and an inline button clicked during a redraw reaches the command without its row.
  await ranked.filter({ hasText: '1. candidate 3' }).click({ button: 'right' });
  await menuItem('Show Candidate\'s Changes');
  // The multi-file diff editor adds its file count to the title once it has loaded them.
  await page.locator('.tab .label-name', { hasText: /^base ↔ candidate 3, multiply-3( \(\d+ files\))?$/ })
    .waitFor({ timeout: 30_000 });
  step('all of a candidate\'s changes opened');

  await ranked.filter({ hasText: '1. candidate 3' }).click({ button: 'right' });
  await menuItem('Pick Candidate (Merge)');
  await page.locator('.monaco-dialog-box', { hasText: 'Pick candidate 3' }).waitFor({ timeout: 30_000 });
  await shot('vscode-candidate-pick');
  await page.locator('.monaco-dialog-box .monaco-button', { hasText: 'Merge' }).click();
  await toasts.filter({ hasText: 'picked candidate 3' }).waitFor({ timeout: 60_000 });
  await ranked.filter({ hasText: '1. candidate 3 — multiply-3 (picked)' }).waitFor({ timeout: 30_000 });
  await ranked.filter({ hasText: '3. candidate 2 — multiply-2 (archived)' }).waitFor({ timeout: 30_000 });
  const listed = execFileSync('git', ['worktree', 'list'], { cwd: repo, encoding: 'utf8' });
  const archives = execFileSync('git', ['for-each-ref', '--format=%(refname)', 'refs/adw/archive/'], { cwd: repo, encoding: 'utf8' });
  if (/multiply-[12]\b/.test(listed) || !/multiply-1/.test(archives) || !/multiply-2/.test(archives)) {
    throw new Error(`the other candidates were not archived:\n${listed}\n${archives}`);
  }
  if (!readFileSync(join(repo, 'src/calc/multiply.py'), 'utf8').includes('def multiply')) throw new Error('not merged');
  await page.waitForTimeout(500);
  await shot('vscode-candidates-picked');
  step('picked and merged; the others archived');

  // An archived candidate's diff still opens: its side comes from its archive (git, through the adw-rev documents).
  await clickUntil(candidates.locator('.monaco-list-row')
    .filter({ has: page.locator('.label-name', { hasText: /^multiply\.py$/ }) }).nth(2),
  page.locator('.tab', { hasText: 'base ↔ candidate 2' }));
  await page.locator('.monaco-diff-editor .view-line', { hasText: 'return a + b' }).first().waitFor({ timeout: 30_000 });
  step('an archived candidate\'s diff opened from its archive');

  // An agent's permission question (the build phase's ACP agent with permissions = "ask") is one notification with
  // the answers as buttons; "Always for This Task" covers its next edit inside the worktree, Deny refuses the rest.
  writeFileSync(join(repo, '.adw.toml'), '[agents]\ntest_command = ["python", "-m", "pytest", "-q"]\n\n'
    + `[phases.build]\nagent = "acp"\ncommand = ${JSON.stringify([PYTHON, join(EXTENSION_DIR, '..', 'tests', 'fakes', 'acp_agent.py')])}\n`
    + 'prompt = "permission again"\npermissions = "ask"\npermission_timeout = 120\nretries = 0\n');
  await palette('Notifications: Clear All Notifications');
  await page.keyboard.press('F1');
  await page.locator('.quick-input-widget input').fill(join(repo, 'specs', 'multiply.md'));
  await page.locator('.quick-input-list .monaco-list-row', { hasText: 'multiply.md' }).first().waitFor({ timeout: 30_000 });
  await page.keyboard.press('Enter');
  await lens('Start Parallel SDLC').first().click({ timeout: 60_000 });
  const question = (tool) => toasts.filter({ hasText: `the agent asks to ${tool}` });
  await question('Edit a.txt').waitFor({ timeout: 120_000 });
  await page.waitForTimeout(500);
  await shot('vscode-permission-question');
  await question('Edit a.txt').locator('.monaco-button', { hasText: 'Always for This Task' }).click();
  for (const tool of ['Run rm -rf /', 'Edit /etc/passwd']) {
    await question(tool).waitFor({ timeout: 60_000 });
    await question(tool).locator('.monaco-button', { hasText: 'Deny' }).click();
  }
  const asked = JSON.parse(execFileSync(PYTHON, ['-m', 'adw', '-C', repo, 'status', '--json'], { encoding: 'utf8' }));
  const run = asked.workflows.find((wf) => wf.name === 'multiply');
  const build = await (async () => {
    for (let i = 0; i < 300; i++) {
      const wf = JSON.parse(execFileSync(PYTHON, ['-m', 'adw', '-C', repo, 'status', run.id, '--json'], { encoding: 'utf8' }));
      const task = wf.tasks.find((t) => t.id === 'build');
      if (task.state !== 'running' && task.state !== 'pending') return task;
      await page.waitForTimeout(200);
    }
    throw new Error('the build phase did not end');
  })();
  const whys = build.outputs.acp.permissions.map((d) => d.why);
  const expected = ['allowed for this task by the editor', 'denied by the editor', 'denied by the editor',
    'edit tools allowed for this task by the editor'];
  if (JSON.stringify(whys) !== JSON.stringify(expected)) throw new Error(`permission answers: ${JSON.stringify(whys)}`);
  rmSync(join(repo, '.adw.toml'));
  step('permission questions answered from notifications');
  step('PASS');
} catch (error) {
  failed = true;
  console.error(error);
  await page.screenshot({ path: join(profile.root, 'failure.png') }).catch(() => {});
  console.error(`failure screenshot: ${join(profile.root, 'failure.png')}; server log: ${serverLog}`);
} finally {
  await browser.close();
  await server.stop();
  forge.stop();
}
process.exit(failed ? 1 : 0);

/** tests/forge/fakeforge.py as GitHub for `octo/calc`, with issue #7; `pulls(branch)` asks it like ADW does. */
async function startFakeForge(dir) {
  const issues = join(dir, 'issues.json');
  writeFileSync(issues, JSON.stringify([{ number: 7, title: 'Subtract numbers', labels: ['enhancement'],
    body: 'Add `subtract(a, b)`.\n\n```python path=src/calc/subtract.py\ndef subtract(a: float, b: float) -> float:\n'
      + '    return a - b\n```\n' }]));
  const child = spawn(PYTHON, ['-m', 'tests.forge.fakeforge', 'github', 'octo/calc', issues],
    { cwd: join(EXTENSION_DIR, '..'), stdio: ['pipe', 'pipe', 'inherit'] });
  const url = await new Promise((resolveUrl, reject) => {
    child.stdout.once('data', (data) => resolveUrl(String(data).trim()));
    child.once('exit', (code) => reject(new Error(`the fake forge exited (${code})`)));
  });
  return {
    url,
    async pulls(branch) {
      const answer = await fetch(`${url}/repos/octo/calc/pulls?state=open&head=${encodeURIComponent(`octo:${branch}`)}`);
      return answer.json();
    },
    stop() { child.stdin.end(); },
  };
}

/** The demo repository on the fake forge (fetch URL on github.com, pushes to a local bare repository), and the
 * command agent of the best-of candidates: `{model}` says which change it makes. */
function setUpForgeAndCandidates(repo, dir, forgeUrl) {
  const bare = join(dir, 'origin.git');
  execFileSync('git', ['init', '-q', '--bare', bare]);
  execFileSync('git', ['remote', 'add', 'origin', 'https://github.com/octo/calc.git'], { cwd: repo });
  execFileSync('git', ['remote', 'set-url', '--push', 'origin', bare], { cwd: repo });
  const script = join(dir, 'candidate.py');
  writeFileSync(script, [
    'import pathlib, sys',
    'kind = sys.argv[1]',
    'src, test = pathlib.Path("src/calc/multiply.py"), pathlib.Path("tests/test_multiply.py")',
    'test.parent.mkdir(exist_ok=True)',
    'if kind == "broken":',
    '    src.write_text("def multiply(a, b):\\n    return a + b\\n\\n\\ndef square(x):\\n    return multiply(x, x)\\n")',
    '    test.write_text("from calc.multiply import multiply, square\\n\\n\\ndef test_multiply():\\n    assert multiply(4, 5) == 20\\n'
      + '\\n\\ndef test_square():\\n    assert square(3) == 9\\n")',
    'else:',
    '    src.write_text("def multiply(a, b):\\n    return a * b\\n")',
    '    test.write_text("from calc.multiply import multiply\\n\\n\\ndef test_multiply():\\n    assert multiply(4, 5) == 20\\n")',
    '',
  ].join('\n'));
  appendFileSync(join(repo, 'pyproject.toml'), `
[tool.adw.phases.build]
agent = "spec-apply"
command = ${JSON.stringify([PYTHON, script, '{model}'])}

[tool.adw.forge]
host = "github.com"
kind = "github"
api_url = "${forgeUrl}"
`);
  execFileSync('git', ['commit', '-q', '-am', 'calc: on the fake forge'], { cwd: repo, env: { ...process.env,
    GIT_AUTHOR_NAME: 'e2e', GIT_AUTHOR_EMAIL: 'e2e@example.com', GIT_COMMITTER_NAME: 'e2e',
    GIT_COMMITTER_EMAIL: 'e2e@example.com' } });
}
