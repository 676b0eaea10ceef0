import * as assert from 'node:assert/strict';
import { failureToast, serverCommand } from '../../protocol';
import { specChoices } from '../../specs';

describe('specs', () => {
  it('pre-selects the active spec', () => {
    assert.deepEqual(specChoices(['/r/specs/b.md', '/r/specs/a.md'], '/r/specs/b.md'), [
      { path: '/r/specs/a.md', picked: false },
      { path: '/r/specs/b.md', picked: true },
    ]);
  });

  it('pre-selects a lone spec, and nothing when the active file is not a spec', () => {
    assert.deepEqual(specChoices(['/r/specs/a.md'], undefined), [{ path: '/r/specs/a.md', picked: true }]);
    assert.ok(specChoices(['/r/specs/a.md', '/r/specs/b.md', '/r/specs/a.md'], '/r/README.md').every((c) => !c.picked));
    assert.equal(specChoices(['/r/specs/a.md', '/r/specs/a.md', '/r/specs/b.md'], undefined).length, 2);
  });
});

describe('protocol', () => {
  it('names server commands adw.server.*', () => {
    assert.equal(serverCommand('startSdlc'), 'adw.server.startSdlc');
  });

  it('words a failure as one toast, with Show Log only for a server bug', () => {
    const refused = Object.assign(new Error('there is nothing to redo — redo follows an undo'), { code: -32803 });
    assert.deepEqual(failureToast(refused),
      { message: 'ADW: there is nothing to redo — redo follows an undo', actions: [] });
    const bug = Object.assign(new Error('undo failed: KeyError — see the log'), { code: -32603 });
    assert.deepEqual(failureToast(bug).actions.map((a) => a.title), ['Show Log']);
    assert.equal(failureToast('plain').message, 'ADW: plain');
  });
});
