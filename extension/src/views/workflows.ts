// The Workflows view: each workflow with its tasks (state, agent, elapsed, cost); a task opens its log.
import * as vscode from 'vscode';
import type { AdwClient } from '../client';
import { runningAgents, stateIcon, taskDescription, workflowDescription } from '../format';
import { Requests, Task, Workflow } from '../protocol';
import { RepositoryNode, inRepository, isRepositoryNode, topRows } from '../repositories';
import { repositoryItem } from './repositoryItem';

export type WorkflowNode = { workflow: Workflow; task?: Task };
type Node = WorkflowNode | RepositoryNode;

export class WorkflowsProvider implements vscode.TreeDataProvider<Node>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  private readonly loaded = new vscode.EventEmitter<Workflow[]>();
  readonly onDidChangeTreeData = this.changed.event;
  /** Fires with every list from the server (the status bar counts running agents from it). */
  readonly onDidLoad = this.loaded.event;
  workflows: Workflow[] = [];
  /** Elapsed times tick while something runs: re-render every second from the last list, no request. */
  private readonly ticker = setInterval(() => {
    if (runningAgents(this.workflows) || this.workflows.some((w) => w.state === 'running')) this.changed.fire();
  }, 1000);

  constructor(private readonly adw: AdwClient) {}

  async load(): Promise<Workflow[]> {
    try {
      this.workflows = await this.adw.request<Workflow[]>(Requests.workflows);
    } catch (error) {
      this.adw.output.debug(`workflows: ${String(error)}`);
      this.workflows = [];
    }
    this.changed.fire();
    this.loaded.fire(this.workflows);
    return this.workflows;
  }

  getChildren(element?: Node): Node[] {
    const rows: WorkflowNode[] = this.workflows.map((workflow) => ({ workflow }));
    if (!element) return topRows(rows, (n) => n.workflow.repo);
    if (isRepositoryNode(element)) return inRepository(rows, (n) => n.workflow.repo, element);
    if (element.task) return [];
    return element.workflow.tasks.map((task) => ({ workflow: element.workflow, task }));
  }

  getTreeItem(node: Node): vscode.TreeItem {
    if (isRepositoryNode(node)) return repositoryItem(node);
    const now = Date.now() / 1000;
    const { workflow, task } = node;
    if (task) {
      const item = new vscode.TreeItem(task.phase);
      item.id = `${workflow.id}/${task.id}`;
      item.description = taskDescription(task, now);
      item.tooltip = [task.summary, task.reason].filter(Boolean).join('\n') || undefined;
      item.iconPath = new vscode.ThemeIcon(stateIcon(task.state));
      item.contextValue = `task.${task.state}`;
      item.command = {
        command: 'adw.openTaskLog', title: 'Open Task Log', arguments: [workflow.id, task.id, workflow.repo, workflow.name],
      };
      return item;
    }
    const expanded = workflow.state === 'running' || workflow.state === 'pending';
    const item = new vscode.TreeItem(workflow.name,
      expanded ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.Collapsed);
    // VS Code keeps a row's expansion by id: a new id when the run ends lets a finished workflow fold up.
    item.id = `${workflow.id}${expanded ? '' : ':done'}`;
    item.description = workflowDescription(workflow, now);
    item.tooltip = `${workflow.id} — ${workflow.state}${workflow.reason ? `: ${workflow.reason}` : ''}\n${workflow.cwd}`;
    item.iconPath = new vscode.ThemeIcon(stateIcon(workflow.state));
    item.contextValue = `workflow.${workflow.state}`;
    return item;
  }

  dispose(): void {
    clearInterval(this.ticker);
    this.changed.dispose();
    this.loaded.dispose();
  }
}
