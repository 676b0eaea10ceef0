// The command arguments the extension may send are the server's (protocol.generated.ts, written from
// server/adw/lsp/params.py). The compiler is the test (`npm test` runs tsc first): `accepted` must type-check
// and each `@ts-expect-error` must stay an error.
import * as assert from 'node:assert/strict';
import { serverCommand, type ServerCommands } from '../../protocol';

type Args<K extends keyof ServerCommands> = ServerCommands[K];

const accepted: { [K in keyof ServerCommands]?: Args<K>[] } = {
  merge: [['feat'], ['feat', 'squash'], ['feat', null, 'main']],
  undo: [[], ['feat', null, 2], [null, 'src/a.py']],
  startSdlc: [[['specs/a.md']], [['specs/a.md'], { maxAgents: 2 }]],
  removeWorktree: [['feat', true, false]],
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
// @ts-expect-error no such command
serverCommand('deploy');

void [accepted, octopus, nameless, latest, extra, options];  // checked by the compiler, never run

describe('protocol', () => {
  it('names server commands adw.server.<name>', () => {
    assert.equal(serverCommand('mergePreview'), 'adw.server.mergePreview');
  });
});
