// In-editor integration tests (what @vscode/test-electron does, without Electron): VS Code's own server from
// code-server's lib/vscode, started with --enable-smoke-test-driver and opened with a payload naming this
// extension folder (extensionDevelopmentPath) and the compiled test module (extensionTestsPath). The test
// module runs in the extension host with the full `vscode` API; the workbench reports its result through
// window.codeAutomationExit(code).
import { openSync, writeFileSync } from 'node:fs';
import { format } from 'node:util';
import { join } from 'node:path';
import {
  CODE_SERVER_DIR, EXTENSION_DIR, freePort, launchBrowser, makeDemoRepo, makeProfile, requireCodeServer, startServer,
} from './common.mjs';

requireCodeServer();
// ADW_RESTRICTED=1: an untrusted workspace, where the extension must start nothing.
const restricted = Boolean(process.env.ADW_RESTRICTED);
// ADW_MULTIROOT=1: a saved workspace of two demo repositories (multiroot.js).
const multiroot = Boolean(process.env.ADW_MULTIROOT);
const port = freePort();
const profile = makeProfile(restricted ? { 'security.workspace.trust.enabled': true } : {});
const workspace = multiroot ? join(profile.root, 'two-repositories.code-workspace') : makeDemoRepo(profile.root);
if (multiroot) {
  const folders = ['one', 'two'].map((name) => ({ path: makeDemoRepo(join(profile.root, name)) }));
  writeFileSync(workspace, JSON.stringify({ folders }));
}
const serverLog = join(profile.root, 'server.log');
const server = await startServer(process.execPath, [
  join(CODE_SERVER_DIR, 'node_modules', 'code-server', 'lib', 'vscode', 'out', 'server-main.js'),
  '--host', '127.0.0.1', '--port', String(port), '--without-connection-token', '--accept-server-license-terms',
  '--enable-smoke-test-driver', '--disable-telemetry', ...(restricted ? [] : ['--disable-workspace-trust']),
  '--server-data-dir', join(profile.root, 'sd'), '--user-data-dir', profile.userDataDir,
  '--extensions-dir', profile.extensionsDir], profile.env, port, openSync(serverLog, 'w'));
const browser = await launchBrowser(profile.env);
let code = 'not run';
try {
  const page = await browser.newPage();
  const exited = new Promise((resolve) => page.exposeFunction('codeAutomationExit', resolve));
  // The workbench's console, minus the noise of an offline machine (marketplace, telemetry, service worker).
  const noise = /ENOTFOUND|Service Worker|socket|connection token|extensions cache|ChatSessionStore|^\s+at /;
  await page.exposeFunction('codeAutomationLog', (type, args) => {
    const text = format(...(args ?? []));
    if (type !== 'debug' && !noise.test(text)) console.log(text);
  });
  const remote = `vscode-remote://127.0.0.1:${port}`;
  const payload = [['extensionDevelopmentPath', remote + EXTENSION_DIR],
    ['extensionTestsPath', remote + join(EXTENSION_DIR, 'out', 'test', 'integration',
    restricted ? 'restricted.js' : multiroot ? 'multiroot.js' : 'index.js')]];
  await page.goto(`http://127.0.0.1:${port}/?${multiroot ? 'workspace' : 'folder'}=${encodeURIComponent(workspace)}`
    + `&payload=${encodeURIComponent(JSON.stringify(payload))}`);
  const timeout = Number(process.env.ADW_TEST_TIMEOUT_MS || 300_000);
  code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), timeout))]);
} finally {
  await browser.close();
  await server.stop();
}
console.log(`integration tests finished: ${code} (server log: ${serverLog})`);
process.exit(code === 0 ? 0 : 1);
