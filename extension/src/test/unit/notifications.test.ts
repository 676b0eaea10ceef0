import * as assert from 'node:assert/strict';
import { endText, endedSince, worthTelling } from '../../runEnds';
import type { Task, Workflow } from '../../protocol';

const task = (over: Partial<Task> = {}): Task => ({
  id: 'test', phase: 'test', agent: 'pytest', kind: 'agent', state: 'succeeded', reason: '', summary: '',
  started_at: 100, finished_at: 110, usage: { cost_usd: null }, ...over,
});

const workflow = (id: string, state: string, tasks: Task[] = [task()]): Workflow => ({
  id, name: id.split('-')[0], repo: '/r', cwd: `/r.worktrees/${id}`, spec: '/r/specs/x.md', worktree: id,
  state, reason: '', created_at: 90, started_at: 90, finished_at: null, tasks, usage: { cost_usd: null },
} as Workflow);

describe('run notifications', () => {
  it('tells nothing about the runs already there when the first list arrives', () => {
    assert.deepEqual(endedSince(undefined, [workflow('a-1', 'failed'), workflow('b-1', 'succeeded')]), []);
  });

  it('tells each run that ended since the last list, once', () => {
    const seen = new Map([['a-1', 'running'], ['b-1', 'running'], ['c-1', 'failed']]);
    const list = [workflow('a-1', 'succeeded'), workflow('b-1', 'running'), workflow('c-1', 'failed'), workflow('d-1', 'failed')];
    // d-1 started and ended between two lists; c-1 had already ended.
    assert.deepEqual(endedSince(seen, list).map((w) => w.id), ['a-1', 'd-1']);
  });

  it('follows the setting', () => {
    assert.equal(worthTelling(workflow('a-1', 'succeeded'), 'all'), true);
    assert.equal(worthTelling(workflow('a-1', 'succeeded'), 'failures'), false);
    assert.equal(worthTelling(workflow('a-1', 'cancelled'), 'failures'), true);
    assert.equal(worthTelling(workflow('a-1', 'failed'), 'off'), false);
  });

  it('names the failed phase and its reason', () => {
    const failed = workflow('calc-1', 'failed', [task({ phase: 'build', id: 'build' }), task({ state: 'failed', reason: '2 new failures' })]);
    assert.equal(endText(failed), 'ADW: calc failed in test: 2 new failures');
    assert.equal(endText(workflow('calc-1', 'succeeded')), 'ADW: calc succeeded');
  });
});
