// extensionTestsPath module for an untrusted workspace (ADW_RESTRICTED=1 in e2e/integration.mjs):
// the extension loads, but starts no server and runs no command.
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { activate } from '../../extension';

type Api = Awaited<ReturnType<typeof activate>>;

export async function run(): Promise<void> {
  assert.equal(vscode.workspace.isTrusted, false, 'the workspace must be untrusted for this test');
  const api = await vscode.extensions.getExtension<Api>('adw.adw')!.activate();
  for (let i = 0; i < 40 && api.adw.state !== 'restricted'; i++) await new Promise((r) => setTimeout(r, 250));
  assert.equal(api.adw.state, 'restricted');
  assert.equal(api.adw.interpreter, undefined, 'no interpreter was even looked for');
  await assert.rejects(api.adw.ready(), /Restricted Mode/);
  const commands = await vscode.commands.getCommands(true);
  assert.ok(!commands.includes('adw.server.startSdlc'), 'no server, so no server commands');
  console.log('restricted mode: extension loaded, no server started');
}
