// Shared by the in-editor integration test and the browser end-to-end test: a throwaway VS Code profile,
// a server in its own process group, headless Debian chromium, and a demo repository.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const EXTENSION_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const CODE_SERVER_DIR = process.env.ADW_CODE_SERVER_DIR || join(process.env.HOME, '.cache', 'adw-code-server');
export const PYTHON = process.env.ADW_PYTHON || resolve(EXTENSION_DIR, '..', '.venv', 'bin', 'python');

export function requireCodeServer() {
  if (!existsSync(join(CODE_SERVER_DIR, 'node_modules', '.bin', 'code-server'))) {
    throw new Error(`no code-server in ${CODE_SERVER_DIR}: run scripts/install-code-server.sh first`);
  }
}

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];

export function launchBrowser(env) {
  return chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: CHROMIUM_ARGS, env });
}

/** User data, extensions and XDG folders in a temp dir, so nothing lands in $HOME. */
export function makeProfile(settings = {}) {
  const root = mkdtempSync(join(tmpdir(), 'adw-vscode-'));
  mkdirSync(join(root, 'ud', 'User'), { recursive: true });
  writeFileSync(join(root, 'ud', 'User', 'settings.json'), JSON.stringify({
    'workbench.startupEditor': 'none',
    'workbench.welcomePage.walkthroughs.openOnInstall': false,
    'workbench.tips.enabled': false,
    'telemetry.telemetryLevel': 'off',
    'extensions.autoCheckUpdates': false, 'extensions.autoUpdate': false,
    'extensions.ignoreRecommendations': true, 'update.mode': 'none',
    'workbench.enableExperiments': false, 'security.workspace.trust.enabled': false,
    'git.enabled': false, 'files.autoSave': 'off',
    'files.simpleDialog.enable': true, // File: Open File… as a quick input, not the browser's picker
    'adw.python': PYTHON,
    ...settings,
  }, null, 2));
  const env = { ...process.env, XDG_CONFIG_HOME: join(root, 'xdg-config'), XDG_DATA_HOME: join(root, 'xdg-data'),
    XDG_CACHE_HOME: join(root, 'xdg-cache'), XDG_STATE_HOME: join(root, 'xdg-state') };
  return { root, env, userDataDir: join(root, 'ud'), extensionsDir: join(root, 'ext') };
}

/** Starts a server in its own process group; stop() ends the group (extension host, language server…). */
export async function startServer(command, args, env, port, log) {
  const child = spawn(command, args, { env, detached: true, stdio: ['ignore', log ?? 'ignore', log ?? 'ignore'] });
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/`)).status < 500) break;
    } catch { /* not listening yet */ }
    if (i > 240 || child.exitCode !== null) throw new Error(`server on port ${port} did not start`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const signal = (name) => { try { process.kill(-child.pid, name); } catch { /* already gone */ } };
  return {
    /** SIGTERM to the whole group, then SIGKILL whatever is left after 5 s. */
    async stop() {
      signal('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      signal('SIGKILL');
    },
  };
}

export const freePort = () => 20000 + Math.floor(Math.random() * 20000);

/** A fresh copy of ADW's demo repository (three specs, one commit) at DIR/calc. */
export function makeDemoRepo(dir) {
  const repo = join(dir, 'calc');
  execFileSync(PYTHON, ['-c', 'import asyncio, pathlib, sys; from adw.sdlc.demo import create_demo_repo; '
    + 'asyncio.run(create_demo_repo(pathlib.Path(sys.argv[1])))', repo], { stdio: 'inherit' });
  return repo;
}
