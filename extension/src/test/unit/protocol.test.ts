// The command arguments the extension may send are the server's (protocol.generated.ts, written from
// server/adw/lsp/params.py). The compiler is the test (`npm test` runs tsc first): `accepted` must type-check
// and each `@ts-expect-error` must stay an error.
import * as assert from 'node:assert/strict';
import { actionCommand, failureToast, sdlcOptions, serverCommand, type ServerCommands } from '../../protocol';

type Args<K extends keyof ServerCommands> = ServerCommands[K];

const accepted: { [K in keyof ServerCommands]?: Args<K>[] } = {
  merge: [['feat'], ['feat', 'squash'], ['feat', null, 'main']],
  undo: [[], ['feat', null, 2], [null, 'src/a.py']],
  startSdlc: [[['specs/a.md']], [['specs/a.md'], { maxAgents: 2 }],
    [['specs/a.md'], { executor: 'ray', address: 'head:6379' }]],
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
// @ts-expect-error an executor the server does not have
const dask: Args<'startSdlc'> = [['a.md'], { executor: 'dask' }];
// @ts-expect-error pick needs the candidate's number
const numberless: Args<'pick'> = ['mul-best-1'];
// @ts-expect-error no such command
serverCommand('deploy');

void [accepted, octopus, nameless, latest, extra, options, dask, numberless];  // checked by the compiler, never run

describe('protocol', () => {
  it('sends the SDLC settings only where they override [tool.adw]', () => {
    const defaults = { maxAgents: 0, executor: 'config', rayAddress: '' };
    assert.deepEqual(sdlcOptions(defaults), {});
    assert.deepEqual(sdlcOptions({ ...defaults, rayAddress: 'head:6379' }), {});  // the address needs ray
    assert.deepEqual(sdlcOptions({ maxAgents: 3, executor: 'ray', rayAddress: ' head:6379 ' }, 'resume'),
      { maxAgents: 3, executor: 'ray', address: 'head:6379', existing: 'resume' });
    assert.deepEqual(sdlcOptions({ ...defaults, executor: 'ray' }), { executor: 'ray' });  // [tool.adw] address
    assert.deepEqual(sdlcOptions({ ...defaults, executor: 'local', rayAddress: 'x' }), { executor: 'local' });
  });

  it('names server commands adw.server.<name>', () => {
    assert.equal(serverCommand('mergePreview'), 'adw.server.mergePreview');
  });

  it('gives a failure toast the buttons its error carries, each mapped to an extension command', () => {
    const actions = [
      { title: 'Show Log', kind: 'showLog', workflow: 'add-1', task: 'test' },
      { title: 'Resume', kind: 'resume', workflow: 'add-1' },
      { title: 'Remove and Rerun', kind: 'rerun', specs: ['/r/specs/add.md'], existing: 'replace' },
    ] as const;
    // The shape vscode-languageclient rejects with: a ResponseError carrying the server's `data`.
    const refusal = Object.assign(new Error('a worktree exists for 1 spec(s) — resume it…'),
      { code: -32803, data: { error: 'WorktreeExistsError', actions } });
    const toast = failureToast(refusal);
    assert.equal(toast.message, 'ADW: a worktree exists for 1 spec(s) — resume it…');
    assert.deepEqual(toast.actions.map((a) => a.title), ['Show Log', 'Resume', 'Remove and Rerun']);
    assert.deepEqual(toast.actions.map(actionCommand), [
      { command: 'adw.openTaskLog', args: ['add-1', 'test'] },
      { command: 'adw.resumeWorkflow', args: ['add-1'] },
      { command: 'adw.startSdlc', args: [undefined, ['/r/specs/add.md'], 'replace'] },
    ]);
    const bug = Object.assign(new Error('undo failed'), { code: -32603 });
    assert.deepEqual(failureToast(bug).actions.map(actionCommand), [{ command: 'adw.showOutput', args: [] }]);
    assert.deepEqual(failureToast(new Error('the ADW server is not running')).actions, []);
  });
});
