import * as assert from 'node:assert/strict';
import {
  ago, agentsText, bestOfRuns, candidateDescription, candidateFacts, candidateLabel, candidateVerdict, checkpointLabel,
  conflictLines, cost, diffSides, diffTitle, duration, elapsed, finishedWorkflows, lineCounts, mergeDetail,
  resumableWorkflows, reviewText, runningAgents, stateIcon, statusText, taskDescription, taskLogTitle,
  workflowDescription, worktreeDescription, worktreeOf,
} from '../../format';
import type { BranchReview, Candidate, MergePreview, Task, Workflow, Worktree } from '../../protocol';

const task = (over: Partial<Task> = {}): Task => ({
  id: 'build', phase: 'build', agent: 'claude', kind: 'agent', state: 'running', reason: '', summary: '',
  started_at: 100, finished_at: null, usage: { cost_usd: null }, ...over,
});

const workflow = (tasks: Task[], over: Partial<Workflow> = {}): Workflow => ({
  id: 'add-1', name: 'add', repo: '/r', cwd: '/r.worktrees/add', spec: '/r/specs/add.md', worktree: 'add',
  state: 'running', reason: '', created_at: 90, started_at: 90, finished_at: null, tasks, usage: { cost_usd: null },
  ...over,
});

const worktree = (over: Partial<Worktree> = {}): Worktree => ({
  name: 'add', path: '/r.worktrees/add', branch: 'adw/add', is_main: false, locked: false, prunable: false,
  checkpoints: 0, dirty: false, ahead: null, behind: null, ...over,
});

const review = (over: Partial<BranchReview> = {}): BranchReview => ({
  branch: 'adw/add',
  pull_request: { number: 3, url: 'https://github.com/o/r/pull/3', title: 'Add', state: 'open', draft: true,
    head: 'adw/add', created: false },
  checks: { state: 'failure', passed: 2, failed: 1, pending: 0, url: null },
  ...over,
});

describe('format', () => {
  it("shows a branch's pull request and CI state, and nothing without a pull request", () => {
    assert.equal(reviewText(review()), 'PR #3 draft ✗ 1 failed');
    assert.equal(reviewText(review({ checks: { state: 'pending', passed: 0, failed: 0, pending: 2, url: null } })),
      'PR #3 draft … 2 running');
    assert.equal(reviewText(review({ checks: { state: 'success', passed: 4, failed: 0, pending: 0, url: null } })),
      'PR #3 draft ✓');
    assert.equal(reviewText(review({ checks: { state: 'none', passed: 0, failed: 0, pending: 0, url: null } })),
      'PR #3 draft');
    assert.equal(reviewText(review({ checks: null, pull_request: { ...review().pull_request!, draft: false } })), 'PR #3');
    assert.equal(reviewText(review({ pull_request: null })), '');
    assert.equal(reviewText(undefined), '');
    assert.equal(worktreeDescription(worktree({ ahead: 1 }), review()), 'adw/add · ↑1 ↓0 · PR #3 draft ✗ 1 failed');
  });

  it('offers a pull request only for finished workflows that have a worktree', () => {
    const done = workflow([], { id: 'a', state: 'succeeded' });
    const failed = workflow([], { id: 'b', state: 'failed' });
    const running = workflow([], { id: 'c', state: 'running' });
    const bare = workflow([], { id: 'd', state: 'succeeded', worktree: null });
    assert.deepEqual(finishedWorkflows([done, failed, running, bare]).map((w) => w.id), ['a', 'b']);
  });

  it('writes durations compactly', () => {
    assert.equal(duration(0), '0s');
    assert.equal(duration(59.9), '59s');
    assert.equal(duration(72), '1m12s');
    assert.equal(duration(3725), '1h02m');
    assert.equal(duration(-3), '0s');
  });

  it('measures elapsed time until the end, or until now while running', () => {
    assert.equal(elapsed({ started_at: null, finished_at: null }, 500), undefined);
    assert.equal(elapsed({ started_at: 100, finished_at: 130 }, 500), 30);
    assert.equal(elapsed({ started_at: 100, finished_at: null }, 500), 400);
  });

  it('shows cost only when the agent reported one', () => {
    assert.equal(cost(null), undefined);
    assert.equal(cost(0), '$0.00');
    assert.equal(cost(0.0351), '$0.04');
  });

  it('describes a task by state, agent, elapsed time and cost', () => {
    assert.equal(taskDescription(task({ usage: { cost_usd: 0.5 } }), 172), 'running · claude · 1m12s · $0.50');
    assert.equal(taskDescription(task({ kind: 'step', agent: 'worktree', state: 'pending', started_at: null }), 0),
      'pending');
  });

  it('names the cluster node a task\'s last attempt runs on', () => {
    const attempts = [{ number: 1, node: 'node-a (0123456789ab)' }, { number: 2, node: 'node-b (ba9876543210)' }];
    assert.equal(taskDescription(task({ attempts }), 110), 'running · claude · on node-b (ba9876543210) · 10s');
    assert.equal(taskDescription(task({ attempts: [{ number: 1, node: null }] }), 110), 'running · claude · 10s');
  });

  it('describes a workflow by its running phases, else its state', () => {
    const parallel = workflow([task({ phase: 'test' }), task({ phase: 'review' }), task({ phase: 'plan', state: 'succeeded' })]);
    assert.equal(workflowDescription(parallel, 100), 'test ‖ review · 10s');
    assert.equal(workflowDescription(workflow([], { state: 'succeeded', finished_at: 95 }), 1000), 'succeeded · 5s');
  });

  it('puts why a workflow failed or was cancelled on its row', () => {
    const failed = workflow([], { state: 'failed', finished_at: 95, reason: 'test: 2 new failures\nsee the log' });
    assert.equal(workflowDescription(failed, 1000), 'failed · test: 2 new failures · 5s');
    const long = workflow([], { state: 'cancelled', finished_at: 95, reason: 'x'.repeat(200) });
    assert.equal(workflowDescription(long, 1000), `cancelled · ${'x'.repeat(79)}… · 5s`);
    const fine = workflow([], { state: 'succeeded', finished_at: 95, reason: 'ignored' });
    assert.equal(workflowDescription(fine, 1000), 'succeeded · 5s');
  });

  it('offers Resume on the workflows that stopped before the end', () => {
    const states = ['failed', 'cancelled', 'interrupted', 'succeeded', 'running'] as const;
    assert.deepEqual(resumableWorkflows(states.map((state) => workflow([], { state }))).map((w) => w.state),
      ['failed', 'cancelled', 'interrupted']);
  });

  it('puts a checkpoint, the files or nothing on each side of a file diff', () => {
    assert.deepEqual(diffSides({ status: 'M' }, 2, null), [{ kind: 'checkpoint', number: 2 }, { kind: 'files' }]);
    assert.deepEqual(diffSides({ status: 'M' }, 2, 5),
      [{ kind: 'checkpoint', number: 2 }, { kind: 'checkpoint', number: 5 }]);
    assert.deepEqual(diffSides({ status: 'A' }, 2, null), [{ kind: 'empty' }, { kind: 'files' }]);
    assert.deepEqual(diffSides({ status: 'D' }, 2, 5), [{ kind: 'checkpoint', number: 2 }, { kind: 'empty' }]);
    assert.equal(diffTitle('src/calc/add.py', 3, null), 'add.py (checkpoint 3 ↔ now)');
    assert.equal(diffTitle('add.py', 1, 4), 'add.py (checkpoint 1 ↔ checkpoint 4)');
    assert.equal(lineCounts({ path: 'a', status: 'M', insertions: 3, deletions: 1 }), '+3 -1');
    assert.equal(lineCounts({ path: 'a.png', status: 'A', insertions: null, deletions: null }), 'binary');
  });

  it('names a task log tab after its workflow and task', () => {
    assert.equal(taskLogTitle('healthz', 'test'), 'healthz · test.log');
  });

  it('counts running agents but not git steps', () => {
    const workflows = [
      workflow([task(), task({ kind: 'step' }), task({ state: 'succeeded' })]),
      workflow([task(), task()]),
    ];
    assert.equal(runningAgents(workflows), 3);
    assert.equal(runningAgents([]), 0);
  });

  it('puts the agent count in the status bar', () => {
    assert.equal(statusText(3), '$(sync~spin) ADW: 3 agents running');
    assert.equal(agentsText(1), '1 agent running');
    assert.equal(statusText(0), '$(check) ADW');
  });

  it('describes a worktree by branch, dirty, ahead/behind and agents', () => {
    assert.equal(worktreeDescription(worktree()), 'adw/add');
    assert.equal(worktreeDescription(worktree({ dirty: true, ahead: 2, behind: 0, agentsRunning: 2 })),
      'adw/add · dirty · ↑2 ↓0 · 2 agents running');
    assert.equal(worktreeDescription(worktree({ is_main: true, branch: 'main' })), '');
  });

  it('names the worktrees a worktree would conflict with, and the files', () => {
    const conflicts = [
      { worktree: 'b', branch: 'adw/b', path: '/r.worktrees/b', error: null,
        files: [{ path: 'src/a.py', kind: 'content' }, { path: 'b.txt', kind: 'modify/delete' }] },
      { worktree: 'c', branch: 'adw/c', path: '/r.worktrees/c', error: 'refusing to merge unrelated histories', files: [] },
    ];
    assert.equal(worktreeDescription(worktree({ conflicts })), 'adw/add · ⚠ conflicts with b, c');
    assert.equal(worktreeDescription(worktree({ conflicts: [] })), 'adw/add');
    assert.deepEqual(conflictLines(conflicts),
      ['b: src/a.py (content), b.txt (modify/delete)', 'c: refusing to merge unrelated histories']);
  });

  it('has an icon for every state', () => {
    for (const state of ['pending', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted', 'skipped'] as const) {
      assert.ok(stateIcon(state));
    }
  });

  it('says how long ago a checkpoint was taken', () => {
    const now = new Date('2026-01-01T12:00:00Z');
    assert.equal(ago('2026-01-01T11:59:30Z', now), 'just now');
    assert.equal(ago('2026-01-01T11:45:00Z', now), '15 min ago');
    assert.equal(ago('2026-01-01T09:00:00Z', now), '3 h ago');
    assert.equal(ago('2025-12-30T12:00:00Z', now), '2 d ago');
    assert.equal(checkpointLabel({ number: 3, message: 'after build', created: '', kind: 'checkpoint', redo: false }),
      '3. after build');
  });

  it('finds the deepest worktree holding a file', () => {
    const trees = [{ path: '/r' }, { path: '/r/nested' }, { path: '/r.worktrees/add' }];
    assert.equal(worktreeOf('/r/src/a.py', trees)?.path, '/r');
    assert.equal(worktreeOf('/r/nested/a.py', trees)?.path, '/r/nested');
    assert.equal(worktreeOf('/r.worktrees/add/a.py', trees)?.path, '/r.worktrees/add');
    assert.equal(worktreeOf('/r.worktrees/add', trees)?.path, '/r.worktrees/add');
    assert.equal(worktreeOf('/other/a.py', trees), undefined);
  });

  it('lists the files of a merge with their line counts before it is confirmed', () => {
    const preview: MergePreview = {
      source: 'adw/add', target: 'main', clean: true, conflicts: [], insertions: 7, deletions: 1, diffstat: '',
      files: [
        { path: 'src/calc/add.py', status: 'A', insertions: 2, deletions: 0 },
        { path: 'README.md', status: 'M', insertions: 5, deletions: 1 },
        { path: 'logo.png', status: 'A', insertions: null, deletions: null },
      ],
    };
    assert.equal(mergeDetail(preview),
      'A src/calc/add.py  +2 -0\nM README.md  +5 -1\nA logo.png  binary\n3 file(s) changed, +7 -1');
    assert.equal(mergeDetail(preview, 1).split('\n').slice(1).join('\n'), '… and 2 more\n3 file(s) changed, +7 -1');
  });

  it('warns in the merge dialog about conflicts with other active worktrees', () => {
    const preview: MergePreview = {
      source: 'adw/add', target: 'main', clean: true, conflicts: [], insertions: 1, deletions: 0, diffstat: '',
      files: [{ path: 'src/a.py', status: 'M', insertions: 1, deletions: 0 }],
      activeConflicts: [{ worktree: 'b', branch: 'adw/b', path: '/r.worktrees/b', error: null,
        files: [{ path: 'src/a.py', kind: 'content' }] }],
    };
    assert.equal(mergeDetail(preview), 'Warning: it conflicts with 1 other active worktree(s); whichever merges second '
      + 'will have to resolve them:\nb: src/a.py (content)\n\nM src/a.py  +1 -0\n1 file(s) changed, +1 -0');
  });

  it('shows a best-of candidate by rank, how it was built and why it ranks there', () => {
    const candidate: Candidate = {
      number: 2, workflow: 'mul-2-abc', worktree: 'mul-2', agent: 'claude', model: 'opus', state: 'failed', reason: '',
      new_test_failures: 1, new_findings: 0, files: 2, insertions: 14, deletions: 1, base_commit: 'b0', tip: 't1', repo: '/r',
      path: '/r.worktrees/mul-2', changes: [], cost_usd: 0.5, seconds: 72,
      rank: 3, reasons: ['1 new test failure', 'no new review findings', '+14 -1 in 2 file(s)',
        'below #1: more new test failures (1 vs 0)'],
    };
    assert.equal(candidateLabel(candidate), '3. candidate 2 — mul-2');
    assert.equal(candidateDescription(candidate), 'claude (opus) · failed · 1m12s · $0.50');
    assert.equal(candidateDescription({ ...candidate, model: '', seconds: null, cost_usd: null }), 'claude · failed');
    assert.equal(candidateFacts(candidate), '1 new failure · 0 new findings · +14 −1 in 2 files · 1m12s · $0.50');
    assert.equal(candidateFacts({ ...candidate, new_test_failures: null, new_findings: 3, files: 1, cost_usd: null,
      seconds: null }), 'tests not run · 3 new findings · +14 −1 in 1 file · cost unknown');
  });

  it('calls a candidate a regression when tests failed anew or did not run, then by its findings', () => {
    const base = { new_test_failures: 0, new_findings: 0 } as Candidate;
    assert.equal(candidateVerdict(base), 'clean');
    assert.equal(candidateVerdict({ ...base, new_findings: 2 }), 'findings');
    assert.equal(candidateVerdict({ ...base, new_findings: 2, new_test_failures: 1 }), 'regression');
    assert.equal(candidateVerdict({ ...base, new_test_failures: null }), 'regression');
  });

  it('groups the candidates of each best-of run and leaves other workflows out', () => {
    const runs = bestOfRuns([
      workflow([], { id: 'mul-1-a', name: 'mul-1', best_of: { group: 'mul-best-1', number: 1, agent: null, model: null } }),
      workflow([], { id: 'add-b', name: 'add' }),
      workflow([], { id: 'mul-2-b', name: 'mul-2', best_of: { group: 'mul-best-1', number: 2, agent: 'claude', model: null } }),
    ]);
    assert.deepEqual(runs.map((run) => [run.group, run.name, run.candidates.map((wf) => wf.id)]),
      [['mul-best-1', 'mul', ['mul-1-a', 'mul-2-b']]]);
  });
});
