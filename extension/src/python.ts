// Which Python runs the server, and how to tell the user to install ADW there (no `vscode` import).

export interface Interpreter {
  path: string;
  /** Where it came from, for messages: the setting, the Python extension or PATH. */
  source: 'adw.python' | 'Python extension' | 'PATH';
}

export interface InterpreterSources {
  setting: string;
  workspaceFolder: string | undefined;
  /** The Python extension's active interpreter, or undefined when that extension is absent. */
  activeInterpreter(): Promise<string | undefined>;
}

/** `adw.python` → the Python extension's active interpreter → `python3` on PATH. */
export async function findInterpreter(sources: InterpreterSources): Promise<Interpreter> {
  const configured = expandVariables(sources.setting.trim(), sources.workspaceFolder);
  if (configured) return { path: configured, source: 'adw.python' };
  const active = await sources.activeInterpreter().catch(() => undefined);
  if (active) return { path: active, source: 'Python extension' };
  return { path: 'python3', source: 'PATH' };
}

/** `${workspaceFolder}`, `${userHome}` and a leading `~` in the setting, as users write them. */
export function expandVariables(value: string, workspaceFolder: string | undefined): string {
  const home = process.env.HOME ?? process.env.USERPROFILE ?? '';
  return value
    .replace(/^~(?=$|[\\/])/, home)
    .replace(/\$\{userHome\}/g, home)
    .replace(/\$\{workspaceFolder\}/g, workspaceFolder ?? '');
}

export const SERVER_ARGS = ['-m', 'adw', 'lsp'];
export const CHECK_ARGS = ['-c', 'import adw, sys; sys.stdout.write(adw.__version__)'];
export const INSTALL_ARGS = ['-m', 'pip', 'install', 'adw'];

/** A shell command line the user can paste (POSIX quoting; cmd.exe-style on Windows). */
export function commandLine(python: string, args: string[], platform: NodeJS.Platform = process.platform): string {
  const quote = platform === 'win32'
    ? (s: string) => (/[\s"&|<>^]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s)
    : (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  return [python, ...args].map(quote).join(' ');
}
