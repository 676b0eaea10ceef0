import * as assert from 'node:assert/strict';
import { shownByServer, serverCommand } from '../../protocol';
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

  it('knows which errors the server already showed to the user', () => {
    assert.equal(shownByServer({ code: -32602 }), true);
    assert.equal(shownByServer({ code: -32803 }), true);
    assert.equal(shownByServer({ code: -32603 }), false);
    assert.equal(shownByServer(new Error('x')), false);
    assert.equal(shownByServer(null), false);
  });
});
