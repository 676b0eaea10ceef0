// Starts, restarts and stops the ADW language server (`python -m adw lsp`) behind a LanguageClient.
import { execFile } from 'node:child_process';
import * as vscode from 'vscode';
import { LanguageClient, LanguageClientOptions, ServerOptions, State } from 'vscode-languageclient/node';
import {
  CHANGED, CONFIGURATION, ChangedParams, CommandResults, ConfigurationParams, ServerCommands, ToastAction, actionCommand,
  failureToast, serverCommand,
} from './protocol';
import { CHECK_ARGS, INSTALL_ARGS, Interpreter, SERVER_ARGS, commandLine, findInterpreter } from './python';

export type ServerState = 'stopped' | 'starting' | 'running' | 'failed' | 'restricted';

interface PythonExtensionApi {
  environments?: {
    getActiveEnvironmentPath(resource?: vscode.Uri): { path: string };
    resolveEnvironment(path: string): Promise<{ executable: { uri?: vscode.Uri } } | undefined>;
    onDidChangeActiveEnvironmentPath: vscode.Event<unknown>;
  };
}

export class AdwClient implements vscode.Disposable {
  private client: LanguageClient | undefined;
  /** Serialises start/stop so a burst of setting changes restarts once at a time. */
  private queue: Promise<void> = Promise.resolve();
  private readonly stateEmitter = new vscode.EventEmitter<ServerState>();
  private readonly changedEmitter = new vscode.EventEmitter<string>();
  readonly onDidChangeState = this.stateEmitter.event;
  /** The server's `adw/changed` notification: `worktrees`, `workflows` or `checkpoints`. */
  readonly onDidChange = this.changedEmitter.event;
  private readonly configurationEmitter = new vscode.EventEmitter<ConfigurationParams>();
  /** The server's `adw/configuration` notification: an invalid configuration's error, or null once valid. */
  readonly onDidLoadConfiguration = this.configurationEmitter.event;
  state: ServerState = 'stopped';
  interpreter: Interpreter | undefined;

  constructor(readonly output: vscode.LogOutputChannel) {}

  get root(): vscode.Uri | undefined {
    return vscode.workspace.workspaceFolders?.[0]?.uri;
  }

  start(): Promise<void> {
    return this.enqueue(() => this.doStart());
  }

  restart(): Promise<void> {
    return this.enqueue(async () => {
      await this.doStop();
      await this.doStart();
    });
  }

  stop(): Promise<void> {
    return this.enqueue(() => this.doStop());
  }

  /** The running client, or an error the command can show ("the server is not running"). */
  async ready(): Promise<LanguageClient> {
    await this.queue;
    if (!vscode.workspace.isTrusted) throw new RestrictedError();
    if (!this.client || this.state !== 'running') {
      throw new Error('the ADW server is not running — see the "ADW" output, or run "ADW: Restart Server"');
    }
    return this.client;
  }

  /** Runs `adw.server.<name>` with its positional arguments, typed by the server's models (protocol.generated.ts). */
  async command<K extends keyof ServerCommands>(name: K, ...args: ServerCommands[K]): Promise<CommandResults[K]> {
    const client = await this.ready();
    return client.sendRequest<CommandResults[K]>('workspace/executeCommand',
      { command: serverCommand(name), arguments: args });
  }

  async request<T>(method: string, params: object = {}): Promise<T> {
    return (await this.ready()).sendRequest<T>(method, params);
  }

  /** Registers the extension's commands; a command that fails shows its one toast (`report`), never VS Code's. */
  registerCommands(table: Record<string, (...args: never[]) => Promise<unknown>>): vscode.Disposable[] {
    return Object.entries(table).map(([id, handler]) => vscode.commands.registerCommand(id, async (...args: never[]) => {
      try {
        return await handler(...args);
      } catch (error) {
        this.report(error);
        return undefined;
      }
    }));
  }

  /** Shows a failure as one toast: the server answers a failed command with its error and shows nothing itself. */
  report(error: unknown): void {
    if (error instanceof RestrictedError) {
      void showRestricted();
      return;
    }
    const { message, actions } = failureToast(error);
    this.output.error(message);
    void this.offer(message, actions);
  }

  /** The error toast, whose buttons run the extension commands they stand for (Resume, Show Log, Remove and Rerun…). */
  private async offer(message: string, actions: ToastAction[]): Promise<void> {
    const picked = await vscode.window.showErrorMessage(message, ...actions.map((action) => action.title));
    const action = actions.find((candidate) => candidate.title === picked);
    if (action) {
      const { command, args } = actionCommand(action);
      await vscode.commands.executeCommand(command, ...args);
    }
  }

  /** A result's own message ("restored checkpoint 3") in the status bar, where it does not need dismissing. */
  announce<T>(result: T): T {
    const message = (result as { message?: unknown } | null)?.message;
    if (typeof message === 'string') vscode.window.setStatusBarMessage(`ADW: ${message}`, 5000);
    return result;
  }

  /** A lens runs `adw.server.*` through the client's own command, which on failure adds a second toast
   * ("Request workspace/executeCommand failed."): send it here instead, report a failure once, and put a
   * result's message ("restored checkpoint 3", "the files already equal checkpoint 7…") in the status bar. */
  private async executeCommand(command: string, args: unknown[]): Promise<unknown> {
    // The spec lens runs the palette's command: the same toast, focus and choices for an existing worktree.
    if (command === serverCommand('startSdlc')) {
      return vscode.commands.executeCommand('adw.startSdlc', undefined, args[0]);
    }
    try {
      const result = await (await this.ready()).sendRequest<unknown>('workspace/executeCommand',
        { command, arguments: args });
      this.announce(result);
      return result;
    } catch (error) {
      this.report(error);
      return undefined;
    }
  }

  private enqueue(step: () => Promise<void>): Promise<void> {
    this.queue = this.queue.then(step, step);
    return this.queue;
  }

  private setState(state: ServerState): void {
    this.state = state;
    this.stateEmitter.fire(state);
  }

  private async doStart(): Promise<void> {
    if (this.client) return;
    if (!vscode.workspace.isTrusted) {
      this.output.info('Restricted Mode: the ADW server is not started until the workspace is trusted.');
      this.setState('restricted');
      return;
    }
    this.setState('starting');
    const interpreter = await findInterpreter({
      setting: vscode.workspace.getConfiguration('adw').get<string>('python', ''),
      workspaceFolder: this.root?.fsPath,
      activeInterpreter: () => activePythonInterpreter(this.root),
    });
    this.interpreter = interpreter;
    this.output.info(`Python: ${interpreter.path} (from ${interpreter.source})`);
    const version = await this.checkAdw(interpreter);
    if (version === undefined) {
      this.setState('failed');
      return;
    }
    this.output.info(`ADW ${version}: starting ${commandLine(interpreter.path, SERVER_ARGS)}`);
    const serverOptions: ServerOptions = {
      command: interpreter.path,
      args: SERVER_ARGS,
      options: { cwd: this.root?.fsPath },
    };
    const clientOptions: LanguageClientOptions = {
      // Lenses and links apply to any file of the workspace (specs, and files inside worktrees).
      documentSelector: [{ scheme: 'file' }],
      outputChannel: this.output,
      traceOutputChannel: this.output,
      // A crashed server is restarted a few times by the client; after that the user restarts it.
      connectionOptions: { maxRestartCount: 3 },
      // Lens titles may use codicons (`$(history) Undo…`); plain LSP clients get titles without them.
      // `clientCommands`: the extension's own commands the server may put in lenses (the run's timeline). One
      // aggregated progress ("4/6 agents, 2 waiting"): the Workflows view shows each task with its cancel button.
      initializationOptions: { codicons: true, clientCommands: ['adw.showTimeline'], progress: 'aggregate' },
      middleware: { executeCommand: (command, args) => this.executeCommand(command, args) },
    };
    const client = new LanguageClient('adw', 'ADW', serverOptions, clientOptions);
    client.onNotification(CHANGED, (params: ChangedParams) => this.changedEmitter.fire(params.what));
    client.onNotification(CONFIGURATION, (params: ConfigurationParams) => this.configurationEmitter.fire(params));
    client.onDidChangeState((event) => {
      if (event.newState === State.Stopped && this.client === client) this.setState('failed');
    });
    this.client = client;
    try {
      await client.start();
      this.setState('running');
      this.changedEmitter.fire('all');
    } catch (error) {
      this.output.error(`the ADW server did not start: ${String(error)}`);
      this.setState('failed');
    }
  }

  private async doStop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client) {
      try {
        await client.stop(5000);
      } catch (error) {
        this.output.warn(`stopping the server: ${String(error)}`);
      }
      await client.dispose();
    }
    this.setState('stopped');
  }

  /** ADW's version in that interpreter, or undefined after telling the user how to install it. */
  private async checkAdw(interpreter: Interpreter): Promise<string | undefined> {
    const result = await run(interpreter.path, CHECK_ARGS, this.root?.fsPath);
    if (result.ok) return result.stdout.trim();
    if (result.notFound) {
      this.output.error(`Python interpreter not found: ${interpreter.path} (from ${interpreter.source})`);
      void this.offerInterpreter(`ADW: Python interpreter "${interpreter.path}" was not found.`);
      return undefined;
    }
    this.output.error(`ADW is not importable in ${interpreter.path}:\n${result.stderr}`);
    void this.offerInstall(interpreter);
    return undefined;
  }

  private async offerInterpreter(message: string): Promise<void> {
    if ((await vscode.window.showErrorMessage(message, 'Set adw.python')) === 'Set adw.python') {
      await vscode.commands.executeCommand('workbench.action.openSettings', 'adw.python');
    }
  }

  private async offerInstall(interpreter: Interpreter): Promise<void> {
    const install = commandLine(interpreter.path, INSTALL_ARGS);
    const choice = await vscode.window.showErrorMessage(
      `ADW is not installed for ${interpreter.path} (from ${interpreter.source}). Install it with: ${install}`,
      'Install', 'Copy Command', 'Set adw.python');
    if (choice === 'Copy Command') {
      await vscode.env.clipboard.writeText(install);
    } else if (choice === 'Set adw.python') {
      await vscode.commands.executeCommand('workbench.action.openSettings', 'adw.python');
    } else if (choice === 'Install') {
      const result = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `ADW: ${install}` },
        () => run(interpreter.path, INSTALL_ARGS, this.root?.fsPath, 600_000));
      this.output.info(result.stdout + result.stderr);
      if (result.ok) {
        await this.restart();
      } else {
        void vscode.window.showErrorMessage(`ADW: "${install}" failed; see the "ADW" output.`);
      }
    }
  }

  dispose(): void {
    void this.stop();
    this.stateEmitter.dispose();
    this.configurationEmitter.dispose();
    this.changedEmitter.dispose();
  }
}

export class RestrictedError extends Error {
  constructor() {
    super('ADW is off in Restricted Mode');
  }
}

export async function showRestricted(): Promise<void> {
  const choice = await vscode.window.showWarningMessage(
    'ADW is off in Restricted Mode: it runs coding agents and the commands configured in this repository. '
    + 'Trust the workspace to use it.', 'Manage Workspace Trust');
  if (choice) await vscode.commands.executeCommand('workbench.trust.manage');
}

/** The Python extension's active interpreter for the workspace, when that extension is installed. */
async function activePythonInterpreter(resource: vscode.Uri | undefined): Promise<string | undefined> {
  const api = await pythonExtensionApi();
  const environments = api?.environments;
  if (!environments) return undefined;
  const active = environments.getActiveEnvironmentPath(resource);
  const resolved = await environments.resolveEnvironment(active.path);
  return resolved?.executable.uri?.fsPath ?? active.path;
}

export async function pythonExtensionApi(): Promise<PythonExtensionApi | undefined> {
  const extension = vscode.extensions.getExtension<PythonExtensionApi>('ms-python.python');
  if (!extension) return undefined;
  return extension.isActive ? extension.exports : extension.activate();
}

interface RunResult {
  ok: boolean;
  notFound: boolean;
  stdout: string;
  stderr: string;
}

export function run(command: string, args: string[], cwd: string | undefined, timeout = 30_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, timeout, maxBuffer: 32 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = (error as NodeJS.ErrnoException | null)?.code;
      resolve({ ok: !error, notFound: code === 'ENOENT', stdout, stderr: stderr || (error?.message ?? '') });
    });
  });
}
