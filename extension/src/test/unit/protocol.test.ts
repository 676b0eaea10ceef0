// The command arguments the extension may send are the server's (protocol.generated.ts, written from
// server/adw/lsp/params.py). The compiler is the test (`npm test` runs tsc first): `accepted` must type-check
// and each `@ts-expect-error` must stay an error.
import * as assert from 'node:assert/strict';
import { existingWorktrees, serverCommand, type ServerCommands } from '../../protocol';

type Args<K extends keyof ServerCommands> = ServerCommands[K];

const accepted: { [K in keyof ServerCommands]?: Args<K>[] } = {
  merge: [['feat'], ['feat', 'squash'], ['feat', null, 'main']],
  undo: [[], ['feat', null, 2], [null, 'src/a.py']],
  startSdlc: [[['specs/a.md']], [['specs/a.md'], { maxAgents: 2 }]],
  removeWorktree: [['feat', true, false]],
  pick: [['mul-best-1', 2], ['mul-best-1', 2, 'squash']],
};

// @ts-expect-error a strategy the server refuses
const octopus: Args<'merge'> = ['feat', 'octopus'];
// @ts-expect-error `name` is required
const nameless: Args<'createWorktree'> = [];
// @ts-expect-error `to` is a number
const latest: Args<'undo'> = [null, null, 'latest'];
// @ts-expect-error listWorktrees takes no argument
const extra: Args<'listWorktrees'> = ['x'];
// @ts-expect-error options are an object with known keys
const options: Args<'startSdlc'> = [['a.md'], { maxAgent: 2 }];
// @ts-expect-error pick needs the candidate's number
const numberless: Args<'pick'> = ['mul-best-1'];
// @ts-expect-error no such command
serverCommand('deploy');

void [accepted, octopus, nameless, latest, extra, options, numberless];  // checked by the compiler, never run

describe('protocol', () => {
  it('names server commands adw.server.<name>', () => {
    assert.equal(serverCommand('mergePreview'), 'adw.server.mergePreview');
  });

  it('finds the existing worktrees of a startSdlc refusal, and only there', () => {
    const entry = {
      spec: '/r/specs/mul.md', worktree: 'mul', path: '/r.worktrees/mul', workflow_id: 'mul-1', workflow_state: 'failed',
    };
    // The shape vscode-languageclient rejects with: a ResponseError carrying the server's `data`.
    const refusal = { code: -32803, message: 'ADW: a worktree exists', data: {
      error: 'WorktreeExistsError', message: 'a worktree exists', hint: '…', existing: [entry], choices: ['resume'],
    } };
    assert.deepEqual(existingWorktrees(refusal), [entry]);
    assert.equal(existingWorktrees({ code: -32803, data: { error: 'WorktreeError', existing: [entry] } }), undefined);
    assert.equal(existingWorktrees(new Error('the ADW server is not running')), undefined);
    assert.equal(existingWorktrees(null), undefined);
  });
});
