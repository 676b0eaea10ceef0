// The status bar item: "ADW: 3 agents running" (click focuses the Workflows view), an invalid configuration, or
// the server's state.
import * as vscode from 'vscode';
import type { ServerState } from './client';
import { statusText } from './format';

export class StatusItem implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('adw.status', vscode.StatusBarAlignment.Left, 10);
  private agents = 0;
  private state: ServerState = 'stopped';
  private configurationError: string | undefined;

  constructor() {
    this.item.name = 'ADW';
    this.render();
    this.item.show();
  }

  setState(state: ServerState): void {
    this.state = state;
    this.render();
  }

  /** The server's message for an invalid `.adw.toml` / `pyproject.toml` (key path and file), or undefined. */
  setConfigurationError(error: string | undefined): void {
    this.configurationError = error;
    this.render();
  }

  setAgents(agents: number): void {
    this.agents = agents;
    this.render();
  }

  private render(): void {
    const item = this.item;
    item.backgroundColor = undefined;
    switch (this.state) {
      case 'running':
        if (this.configurationError) {
          item.text = '$(error) ADW: configuration';
          item.tooltip = `ADW: ${this.configurationError} — fix it and save; ADW reloads it`;
          item.command = 'adw.showOutput';
          item.backgroundColor = new vscode.ThemeColor('statusBarItem.errorBackground');
          return;
        }
        item.text = statusText(this.agents);
        item.tooltip = 'ADW: show the Workflows view';
        item.command = 'adw.workflows.focus';
        return;
      case 'restricted':
        item.text = '$(shield) ADW: Restricted Mode';
        item.tooltip = 'ADW runs coding agents and the commands configured in this repository, '
          + 'so it stays off until you trust the workspace.';
        item.command = 'workbench.trust.manage';
        return;
      case 'starting':
        item.text = '$(loading~spin) ADW';
        item.tooltip = 'ADW: starting the language server';
        item.command = 'adw.showOutput';
        return;
      default:
        item.text = '$(error) ADW';
        item.tooltip = 'ADW: the language server is not running — click to see its output';
        item.command = 'adw.showOutput';
        item.backgroundColor = new vscode.ThemeColor('statusBarItem.errorBackground');
    }
  }

  dispose(): void {
    this.item.dispose();
  }
}
