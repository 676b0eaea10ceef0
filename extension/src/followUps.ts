// Follow-ups: "ADW: Send Follow-up to Agent…" (palette and task rows), a task's transcript streaming into an output
// channel while its agent works, and review comments ("Ask the agent to change this") on the files a workflow
// changed, each sent to `adw.server.followUp` with the file, line range and selected code.
import { ChildProcess, spawn } from 'node:child_process';
import * as vscode from 'vscode';
import type { AdwClient } from './client';
import {
  followUpSent, followUpTasks, followUpWorkflows, FollowUpLocation, locationFor, transcriptArgs, transcriptTitle,
  workflowOfFile,
} from './followUpModel';
import type { CommandResults, Task, Workflow } from './protocol';
import type { WorkflowNode, WorkflowsProvider } from './views/workflows';

export const REVIEW_CONTROLLER = 'adw.review';

export function registerFollowUps(adw: AdwClient, workflows: WorkflowsProvider): vscode.Disposable[] {
  const transcripts = new Transcripts(adw);
  const followUps = new FollowUps(adw, workflows, transcripts);
  const review = new ReviewComments(adw, workflows, followUps);
  const commands: Record<string, (...args: never[]) => Promise<unknown>> = {
    // `message`: given by a caller that already has it (the tests); else asked for.
    'adw.sendFollowUp': (node?: WorkflowNode, message?: string) => followUps.send(node, message),
    'adw.showTranscript': (node?: WorkflowNode) => followUps.showTranscript(node),
    'adw.askAgent': (reply: vscode.CommentReply) => review.ask(reply),
  };
  return [
    transcripts, review,
    ...adw.registerCommands(commands),
  ];
}

class FollowUps {
  constructor(
    private readonly adw: AdwClient,
    private readonly workflows: WorkflowsProvider,
    private readonly transcripts: Transcripts,
  ) {}

  /** Asks for the workflow, the task (its newest agent phase first) and the message, then sends it. */
  async send(node?: WorkflowNode, message?: string): Promise<CommandResults['followUp'] | undefined> {
    const workflow = node?.workflow ?? await this.pickWorkflow();
    if (!workflow) return undefined;
    // A task without a session (a failed test phase, from the "workflow failed" notification): ask which agent.
    const task = node?.task?.session ? node.task : await this.pickTask(workflow);
    if (!task) return undefined;
    message ??= await vscode.window.showInputBox({
      title: `ADW: Follow-up to ${task.phase} (${task.agent}) of ${workflow.name}`,
      prompt: 'What should the agent do next? It continues its session in the worktree.',
      placeHolder: 'e.g. also handle negative numbers', ignoreFocusOut: true,
    });
    if (!message?.trim()) return undefined;
    return this.sendTo(workflow, task, message);
  }

  async sendTo(workflow: Workflow, task: Task, message: string, location?: FollowUpLocation,
  ): Promise<CommandResults['followUp']> {
    const result = await this.adw.command('followUp', workflow.id, message, task.id, location ?? null);
    void vscode.window.showInformationMessage(followUpSent(result, workflow.name));
    this.transcripts.show(workflow, task.id);
    await this.workflows.load();
    return result;
  }

  async showTranscript(node?: WorkflowNode): Promise<void> {
    const workflow = node?.workflow ?? await this.pickWorkflow(true);
    const task = workflow && (node?.task ?? await this.pickTask(workflow, true));
    if (workflow && task) this.transcripts.show(workflow, task.id);
  }

  private async pickWorkflow(any = false): Promise<Workflow | undefined> {
    const all = await this.workflows.load();
    const choices = any ? all : followUpWorkflows(all);
    if (!choices.length) {
      throw new Error(any ? 'no workflows yet' : 'no finished workflow has an agent to follow up: follow-ups need an '
        + 'LLM agent (claude, codex, aider or acp) that has run a task');
    }
    if (choices.length === 1) return choices[0];
    return (await vscode.window.showQuickPick(choices.map((w) => ({
      label: w.name, description: `${w.state} · ${w.id}`, detail: w.cwd, workflow: w,
    })), { title: 'ADW: which workflow?' }))?.workflow;
  }

  private async pickTask(workflow: Workflow, any = false): Promise<Task | undefined> {
    const tasks = any ? workflow.tasks : followUpTasks(workflow);
    if (!tasks.length) throw new Error(`no task of ${workflow.name} has an agent session to continue`);
    if (tasks.length === 1) return tasks[0];
    return (await vscode.window.showQuickPick(tasks.map((t) => ({
      label: t.phase, description: `${t.agent} · ${t.state}${t.stale ? ' · stale' : ''}`,
      detail: t.summary || t.reason || undefined, task: t,
    })), { title: `ADW: which task of ${workflow.name}?` }))?.task;
  }
}

/** One output channel per task, fed by `adw logs … --follow` while the run lasts. */
class Transcripts implements vscode.Disposable {
  private readonly channels = new Map<string, { channel: vscode.OutputChannel; process?: ChildProcess }>();

  constructor(private readonly adw: AdwClient) {}

  show(workflow: Workflow, task: string): void {
    const python = this.adw.interpreter?.path;
    if (!python) throw new Error('the ADW server is not running, so no transcript can be read');
    const key = `${workflow.id}/${task}`;
    let entry = this.channels.get(key);
    if (!entry) {
      entry = { channel: vscode.window.createOutputChannel(transcriptTitle(workflow.name, task)) };
      this.channels.set(key, entry);
    }
    entry.process?.kill();
    entry.channel.clear();
    entry.channel.show(true);
    const shown = entry;
    const child = spawn(python, transcriptArgs(workflow.repo, workflow.id, task), { cwd: workflow.repo });
    shown.process = child;
    child.stdout.setEncoding('utf8').on('data', (text: string) => shown.channel.append(text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => shown.channel.append(text));
    child.on('close', () => {
      if (shown.process === child) shown.process = undefined;
    });
  }

  dispose(): void {
    for (const { channel, process } of this.channels.values()) {
      process?.kill();
      channel.dispose();
    }
    this.channels.clear();
  }
}

/** Comment threads on the files a workflow changed: a comment is sent to the workflow's agent as a follow-up,
 * with the thread's file, lines and the code there. */
class ReviewComments implements vscode.Disposable {
  private readonly controller = vscode.comments.createCommentController(REVIEW_CONTROLLER, 'ADW: ask the agent');

  constructor(
    private readonly adw: AdwClient,
    private readonly workflows: WorkflowsProvider,
    private readonly followUps: FollowUps,
  ) {
    this.controller.options = {
      prompt: 'Ask the agent to change this…', placeHolder: 'What should the agent change here?',
    };
    this.controller.commentingRangeProvider = {
      provideCommentingRanges: (document) => {
        const found = workflowOfFile(this.workflows.workflows, document.uri.fsPath);
        if (document.uri.scheme !== 'file' || !found?.changed) return [];
        return [new vscode.Range(0, 0, Math.max(0, document.lineCount - 1), 0)];
      },
    };
  }

  async ask(reply: vscode.CommentReply): Promise<CommandResults['followUp'] | undefined> {
    const { thread, text } = reply;
    if (!text.trim()) return undefined;
    const found = workflowOfFile(this.workflows.workflows, thread.uri.fsPath);
    if (!found) throw new Error(`${thread.uri.fsPath} is in no worktree of a workflow whose agent can take a follow-up`);
    const [task] = followUpTasks(found.workflow);
    const document = await vscode.workspace.openTextDocument(thread.uri);
    const range = thread.range ?? new vscode.Range(0, 0, 0, 0);
    const lines = Array.from({ length: document.lineCount }, (_, i) => document.lineAt(i).text);
    const location = locationFor(found.relative, range.start.line, range.end.line, range.end.character, lines);
    const result = await this.followUps.sendTo(found.workflow, task, text, location);
    thread.comments = [...thread.comments,
      { body: text, mode: vscode.CommentMode.Preview, author: { name: 'You' } },
      {
        body: `Sent to ${result.task} (${task.agent}), attempt ${result.attempt}: its transcript streams in the output panel.`,
        mode: vscode.CommentMode.Preview, author: { name: 'ADW' },
      }];
    thread.label = `Asked ${result.task} to change lines ${location.startLine}–${location.endLine}`;
    thread.collapsibleState = vscode.CommentThreadCollapsibleState.Expanded;
    this.adw.output.info(`follow-up to ${found.workflow.id}/${result.task} from a review comment on ${found.relative}`);
    return result;
  }

  dispose(): void {
    this.controller.dispose();
  }
}
