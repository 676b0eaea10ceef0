import * as assert from 'node:assert/strict';
import {
  followUpSent, followUpTasks, followUpWorkflows, locationFor, transcriptArgs, transcriptTitle, workflowOfFile,
} from '../../followUpModel';
import type { Task, Workflow } from '../../protocol';

const task = (over: Partial<Task> = {}): Task => ({
  id: 'build', phase: 'build', agent: 'claude', kind: 'agent', state: 'succeeded', reason: '', summary: '',
  started_at: 100, finished_at: 110, usage: { cost_usd: null }, ...over,
});

const session = { agent: 'claude', id: 's-1' };

const workflow = (tasks: Task[], over: Partial<Workflow> = {}): Workflow => ({
  id: 'add-1', name: 'add', repo: '/r', cwd: '/r.worktrees/add', spec: '/r/specs/add.md', worktree: 'add',
  state: 'succeeded', reason: '', created_at: 90, started_at: 90, finished_at: 120, tasks, usage: { cost_usd: null },
  ...over,
});

describe('follow-ups', () => {
  it('offers the tasks whose agent left a session, the newest phase first', () => {
    const wf = workflow([
      task({ id: 'plan', phase: 'plan', session }),
      task({ id: 'build', session: { agent: 'codex', id: 't-1' } }),
      task({ id: 'test', phase: 'test', agent: 'pytest', session: null }),
    ]);
    assert.deepEqual(followUpTasks(wf).map((t) => t.id), ['build', 'plan']);
  });

  it('offers finished workflows with such a task only', () => {
    const done = workflow([task({ session })]);
    const running = workflow([task({ session })], { id: 'run-1', state: 'running' });
    const checksOnly = workflow([task({ agent: 'ruff' })], { id: 'lint-1' });
    assert.deepEqual(followUpWorkflows([running, done, checksOnly]).map((w) => w.id), ['add-1']);
  });

  it('finds the workflow of a file in its worktree, and whether the workflow changed it', () => {
    const older = workflow([task({ session, files_changed: ['src/a.py'] })], { id: 'old', cwd: '/r.worktrees/add' });
    const other = workflow([task({ session })], { id: 'sub', cwd: '/r.worktrees/sub' });
    const noSession = workflow([task()], { id: 'plain', cwd: '/r.worktrees/add' });
    assert.deepEqual(workflowOfFile([noSession, older, other], '/r.worktrees/add/src/a.py', '/'),
      { workflow: older, relative: 'src/a.py', changed: true });
    assert.equal(workflowOfFile([older], '/r.worktrees/add/README.md', '/')?.changed, false);
    assert.equal(workflowOfFile([older], '/r.worktrees/addition/src/a.py', '/'), undefined);  // not a prefix match
    assert.equal(workflowOfFile([older], 'C:\\r.worktrees\\add\\src\\a.py', '\\'), undefined);
    const windows = workflow([task({ session, files_changed: ['src/a.py'] })], { cwd: 'C:\\r.worktrees\\add' });
    assert.equal(workflowOfFile([windows], 'C:\\r.worktrees\\add\\src\\a.py', '\\')?.relative, 'src/a.py');
  });

  it('turns an editor range into 1-based lines and the code selected there', () => {
    const lines = ['def add(a, b):', '    return a + b', '', 'x = 1'];
    assert.deepEqual(locationFor('src/a.py', 0, 1, 16, lines),
      { file: 'src/a.py', startLine: 1, endLine: 2, selectedCode: 'def add(a, b):\n    return a + b' });
    // A selection of whole lines ends at the start of the next one, which is not part of it.
    assert.deepEqual(locationFor('src/a.py', 1, 3, 0, lines),
      { file: 'src/a.py', startLine: 2, endLine: 3, selectedCode: '    return a + b\n' });
    assert.equal(locationFor('src/a.py', 3, 3, 0, lines).endLine, 4);  // an empty range on one line keeps it
  });

  it('says where the follow-up went and what is stale now', () => {
    assert.equal(followUpSent({ workflow: 'add-1', task: 'build', attempt: 2, stale: [] }, 'add'),
      'ADW: follow-up sent to build of add (attempt 2).');
    assert.equal(followUpSent({ workflow: 'add-1', task: 'build', attempt: 3, stale: ['test', 'review'] }, 'add'),
      'ADW: follow-up sent to build of add (attempt 3). test, review ran before it and are now stale: '
      + '"Resume Workflow" runs them again.');
  });

  it('streams a transcript with `adw logs --follow` as an argv list', () => {
    assert.deepEqual(transcriptArgs('/r r', 'add-1', 'build'),
      ['-m', 'adw', '-C', '/r r', 'logs', 'add-1', '--task', 'build', '--follow']);
    assert.equal(transcriptTitle('add', 'build'), 'ADW Transcript: add/build');
  });
});
