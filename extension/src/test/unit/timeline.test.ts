import * as assert from 'node:assert/strict';
import type { Workflow } from '../../protocol';
import { runsOf, timelinePage } from '../../timeline';

const workflow = (id: string, name: string, created: number, run: string | null, state = 'succeeded'): Workflow =>
  ({ id, name, created_at: created, run_id: run, state } as unknown as Workflow);

describe('timeline', () => {
  it('lists each run once, newest first, with its workflows in the order they were made', () => {
    const runs = runsOf([
      workflow('greet-1', 'greet', 11, 'run-a'), workflow('add-1', 'add', 10, 'run-a', 'running'),
      workflow('old-1', 'old', 1, null), workflow('mul-1', 'mul', 20, 'run-b'),
    ]);
    assert.deepEqual(runs.map((r) => [r.id, r.names, r.running]), [
      ['run-b', ['mul'], false], ['run-a', ['add', 'greet'], true], ['old-1', ['old'], false],
    ]);
  });

  it('lets only its own nonce run in the page', () => {
    const page = timelinePage('abc123', 'ADW <run>');
    assert.match(page, /default-src 'none'; style-src 'nonce-abc123'; script-src 'nonce-abc123';/);
    assert.equal((page.match(/<script nonce="abc123">/g) ?? []).length, 1);
    assert.doesNotMatch(page, /https?:|onclick=/);
    assert.match(page, /<title>ADW &lt;run&gt;<\/title>/);
  });
});
