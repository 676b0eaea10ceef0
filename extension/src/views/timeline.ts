// ADW: Show Run Timeline: a webview per run drawing the SVG `adw.server.timeline` returns (the same picture as
// `adw timeline --svg`), redrawn on `adw/changed` and every second while the run goes on; a bar opens its log.
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import type { AdwClient } from '../client';
import type { TimelineResult } from '../protocol';
import { runsOf, timelinePage } from '../timeline';
import type { WorkflowNode, WorkflowsProvider } from './workflows';

const TICK_MS = 1000; // running bars grow while nothing else changes

class TimelinePanel {
  readonly panel: vscode.WebviewPanel;
  readonly id: string;
  private latest: TimelineResult | undefined;
  private ready = false;
  private ticker: NodeJS.Timeout | undefined;

  /** `first`: the server's first answer, whose run id this panel then asks about. */
  constructor(private readonly adw: AdwClient, first: TimelineResult, onDispose: () => void) {
    this.id = first.timeline.run_id;
    this.panel = vscode.window.createWebviewPanel('adw.timeline', 'ADW Timeline', vscode.ViewColumn.Active,
      { enableScripts: true, localResourceRoots: [], retainContextWhenHidden: false });
    this.panel.webview.html = timelinePage(randomBytes(16).toString('hex'), 'ADW Timeline');
    this.panel.webview.onDidReceiveMessage((message: { ready?: boolean; workflow?: string; task?: string }) => {
      if (message.ready) {
        this.ready = true;
        this.post();
      } else if (message.workflow && message.task) {
        void this.openLog(message.workflow, message.task);
      }
    });
    this.panel.onDidChangeViewState(() => {
      // A hidden webview is discarded (retainContextWhenHidden off): the page says ready again when shown.
      if (!this.panel.visible) this.ready = false;
    });
    this.panel.onDidDispose(() => {
      clearInterval(this.ticker);
      onDispose();
    });
    this.show(first);
  }

  async refresh(): Promise<void> {
    this.show(await this.adw.command('timeline', this.id));
  }

  private show(result: TimelineResult): void {
    this.latest = result;
    const lanes = this.latest.timeline.lanes;
    this.panel.title = `ADW Timeline: ${lanes.map((lane) => lane.name).join(', ')}`;
    this.post();
    const live = this.latest.timeline.live;
    if (live && !this.ticker) {
      this.ticker = setInterval(() => {
        if (this.panel.visible) void this.refresh().catch((error) => this.adw.output.debug(String(error)));
      }, TICK_MS);
    } else if (!live && this.ticker) {
      clearInterval(this.ticker);
      this.ticker = undefined;
    }
  }

  private post(): void {
    if (this.ready && this.latest) {
      void this.panel.webview.postMessage({ figures: this.latest.figures, svg: this.latest.svg });
    }
  }

  private async openLog(workflow: string, task: string): Promise<void> {
    const lane = this.latest?.timeline.lanes.find((l) => l.workflow_id === workflow);
    if (!lane) return;
    await vscode.commands.executeCommand('adw.openTaskLog', workflow, task, lane.repo, lane.name);
  }
}

/** `adw.showTimeline` (palette, the Workflows view's context menu, the lens on a running spec), and the panels'
 * live updates. */
export function registerTimeline(adw: AdwClient, workflows: WorkflowsProvider): vscode.Disposable[] {
  const panels = new Map<string, TimelinePanel>();
  let pending: NodeJS.Timeout | undefined;

  async function pick(): Promise<string | undefined> {
    const runs = runsOf(await workflows.load());
    if (!runs.length) {
      void vscode.window.showInformationMessage('ADW: no runs yet. Run "ADW: Start Parallel SDLC" first.');
      return undefined;
    }
    const chosen = await vscode.window.showQuickPick(runs.map((run) => ({
      label: run.names.join(', '), description: run.running ? 'running' : undefined, detail: run.id, run,
    })), { title: 'ADW: Show Run Timeline', placeHolder: 'Which run (the workflows started together)?' });
    return chosen?.run.id;
  }

  async function show(target?: WorkflowNode | string): Promise<void> {
    const id = typeof target === 'string' ? target : target?.workflow.run_id ?? target?.workflow.id ?? await pick();
    if (!id) return;
    const first = await adw.command('timeline', id);
    const runId = first.timeline.run_id;
    const open = panels.get(runId);
    if (open) {
      open.panel.reveal();
      await open.refresh();
      return;
    }
    panels.set(runId, new TimelinePanel(adw, first, () => panels.delete(runId)));
  }

  return [
    vscode.commands.registerCommand('adw.showTimeline', async (target?: WorkflowNode | string) => {
      try {
        await show(target);
      } catch (error) {
        adw.report(error);
      }
    }),
    adw.onDidChange(() => {
      // A workflow emits several changes per second: redraw once they settle for a moment.
      clearTimeout(pending);
      pending = setTimeout(() => {
        for (const panel of panels.values()) {
          void panel.refresh().catch((error) => adw.output.debug(`timeline: ${String(error)}`));
        }
      }, 200);
    }),
    { dispose: () => { clearTimeout(pending); for (const panel of panels.values()) panel.panel.dispose(); } },
  ];
}
