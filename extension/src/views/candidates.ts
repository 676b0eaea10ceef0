// The Candidates view: the candidates of a best-of run (`adw sdlc SPEC --best-of N`), ranked by the server's
// `compare` (regressions first, then findings, then size), one row each with what the ranking weighs, its reasons
// and its changed files beneath; a file opens its diff against the base commit, the row's actions open all of them,
// and pick one (merged here after its merge preview, or as a draft pull request), archiving the others.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { AdwClient, run } from '../client';
import {
  bestOfRuns, candidateDescription, candidateFacts, candidateLabel, candidateVerdict, mergeDetail,
} from '../format';
import type { Candidate, ChangedFile, Comparison, PickResult } from '../protocol';
import type { WorkflowNode, WorkflowsProvider } from './workflows';

/** A file as it is in a commit or tree of the repository (`git cat-file`); empty when the file is not there. */
export const REV_SCHEME = 'adw-rev';
const COMPARING = 'adw.comparing';
const RELOAD_MS = 1000;

export type CandidateNode =
  | { kind: 'candidate'; candidate: Candidate }
  | { kind: 'reason'; candidate: Candidate; text: string }
  | { kind: 'file'; candidate: Candidate; change: ChangedFile };

const VERDICT_ICONS = {
  regression: new vscode.ThemeIcon('error', new vscode.ThemeColor('testing.iconFailed')),
  findings: new vscode.ThemeIcon('warning', new vscode.ThemeColor('list.warningForeground')),
  clean: new vscode.ThemeIcon('pass', new vscode.ThemeColor('testing.iconPassed')),
};

export class CandidatesProvider implements vscode.TreeDataProvider<CandidateNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  comparison: Comparison | undefined;
  /** The last pick of this comparison, so its row says so. */
  private picked: PickResult | undefined;
  private reloadTimer: NodeJS.Timeout | undefined;
  private shown = ''; // what the view shows, as JSON
  readonly view: vscode.TreeView<CandidateNode>;

  constructor(private readonly adw: AdwClient) {
    this.view = vscode.window.createTreeView('adw.candidates', { treeDataProvider: this, showCollapseAll: true });
  }

  async show(group: string): Promise<Comparison> {
    const comparison = await this.adw.command('compare', group);
    if (comparison.group !== this.comparison?.group) this.picked = undefined;
    // Redrawn only when something it shows changed: a redraw under the pointer swallows a click on a row.
    const shown = JSON.stringify([comparison, this.picked]);
    if (shown === this.shown) return comparison;
    this.shown = shown;
    this.comparison = comparison;
    this.view.description = `best of ${comparison.candidates.length}`;
    const spec = comparison.spec ? path.basename(comparison.spec) : comparison.group;
    const archived = this.picked?.archived.filter((a) => a.archive_ref).map((a) => a.worktree) ?? [];
    this.view.message = this.picked
      ? `${spec}: picked candidate ${this.picked.picked}${this.picked.pull_request ? ' as a pull request' : ''}`
        + (archived.length ? `; archived ${archived.join(', ')}` : '')
      : `${spec}: ranked by new test failures, then new review findings, then changed lines`;
    await vscode.commands.executeCommand('setContext', COMPARING, true);
    this.changed.fire();
    return comparison;
  }

  /** The open comparison again, once things settle after the server says something changed (a candidate finished,
   * a worktree was archived): comparing snapshots each candidate's worktree, so not on every event. */
  reloadSoon(): void {
    clearTimeout(this.reloadTimer);
    if (!this.comparison) return;
    this.reloadTimer = setTimeout(() => {
      const group = this.comparison?.group;
      if (group) this.show(group).catch((error) => this.adw.output.debug(`candidates: ${String(error)}`));
    }, RELOAD_MS);
  }

  /** No comparison open: a pending reload is cancelled, and the next `show` draws afresh. */
  forget(): void {
    this.comparison = undefined;
    this.shown = '';
    this.reloadSoon();
  }

  notePick(result: PickResult): void {
    this.picked = result;
  }

  getChildren(node?: CandidateNode): CandidateNode[] {
    if (!node) return (this.comparison?.candidates ?? []).map((candidate) => ({ kind: 'candidate', candidate }));
    if (node.kind !== 'candidate') return [];
    const { candidate } = node;
    const why = candidate.reasons.at(-1) ?? '';
    return [
      { kind: 'reason', candidate, text: why },
      ...(candidate.state !== 'succeeded' ? [{ kind: 'reason' as const, candidate,
        text: `${candidate.state}${candidate.reason ? `: ${candidate.reason}` : ''} — its work is not committed` }] : []),
      ...candidate.changes.map((change) => ({ kind: 'file' as const, candidate, change })),
    ];
  }

  getTreeItem(node: CandidateNode): vscode.TreeItem {
    const { candidate } = node;
    if (node.kind === 'reason') {
      const item = new vscode.TreeItem(node.text);
      item.iconPath = new vscode.ThemeIcon(candidate.rank === 1 ? 'star-full' : 'arrow-down');
      item.tooltip = candidate.reasons.join('\n');
      return item;
    }
    if (node.kind === 'file') {
      const { change } = node;
      const item = new vscode.TreeItem(vscode.Uri.file(change.path));
      item.label = path.basename(change.path);
      const folder = path.dirname(change.path);
      const counts = change.insertions === null ? 'binary' : `+${change.insertions} −${change.deletions}`;
      item.description = [folder === '.' ? '' : folder, counts, change.status === 'M' ? '' : change.status]
        .filter(Boolean).join(' · ');
      item.id = `${candidate.workflow}/${change.path}`;
      item.contextValue = 'candidateFile';
      item.command = { command: 'adw.showCandidateFileDiff', title: 'Show Diff', arguments: [candidate, change] };
      return item;
    }
    const picked = this.picked?.picked === candidate.number;
    const archived = !candidate.path;
    const label = candidateLabel(candidate) + (picked ? ' (picked)' : archived ? ' (archived)' : '');
    const item = new vscode.TreeItem(label, vscode.TreeItemCollapsibleState.Expanded);
    item.id = candidate.workflow;
    item.description = candidateFacts(candidate);
    item.tooltip = new vscode.MarkdownString(`**${candidateLabel(candidate)}** — ${candidateDescription(candidate)}\n\n`
      + candidate.reasons.map((reason) => `- ${reason}`).join('\n'));
    item.iconPath = picked ? new vscode.ThemeIcon('check-all') : VERDICT_ICONS[candidateVerdict(candidate)];
    item.contextValue = candidate.state === 'succeeded' && !archived ? 'candidate.pickable' : 'candidate';
    return item;
  }

  dispose(): void {
    clearTimeout(this.reloadTimer);
    this.changed.dispose();
    this.view.dispose();
  }
}

/** The candidates' commands, and the documents their diffs read. */
export function registerCandidates(adw: AdwClient, candidates: CandidatesProvider, workflows: WorkflowsProvider,
  refresh: (what: string) => Promise<void>): vscode.Disposable[] {
  const actions = new CandidateActions(adw, candidates, workflows, refresh);
  const table: Record<string, (...args: never[]) => Promise<unknown>> = {
    'adw.compareCandidates': (node?: WorkflowNode) => actions.compare(node),
    'adw.showCandidateDiff': (node?: CandidateNode) => actions.showDiff(node),
    'adw.showCandidateFileDiff': (candidate: Candidate, change: ChangedFile) => actions.showFileDiff(candidate, change),
    'adw.pickCandidate': (node?: CandidateNode) => actions.pick(node, false),
    'adw.pickCandidateAsPullRequest': (node?: CandidateNode) => actions.pick(node, true),
    'adw.closeComparison': () => actions.close(),
  };
  return [
    vscode.workspace.registerTextDocumentContentProvider(REV_SCHEME, new RevisionDocuments(adw)),
    adw.onDidChange((what) => { if (what !== 'checkpoints') candidates.reloadSoon(); }),
    ...adw.registerCommands(table),
  ];
}

class CandidateActions {
  constructor(private readonly adw: AdwClient, private readonly candidates: CandidatesProvider,
    private readonly workflows: WorkflowsProvider, private readonly refresh: (what: string) => Promise<void>) {}

  /** Fills the Candidates view with a best-of run (a candidate's, or the one chosen) and shows it. */
  async compare(node?: WorkflowNode): Promise<Comparison | undefined> {
    let group = node?.workflow.best_of?.group;
    if (!group) {
      const runs = bestOfRuns(await this.workflows.load());
      if (!runs.length) {
        throw new Error('no best-of run yet — `adw sdlc SPEC --best-of N` in a terminal starts one');
      }
      group = runs.length === 1 ? runs[0].group : (await vscode.window.showQuickPick(runs.map((run) => ({
        label: run.name, description: `${run.candidates.length} candidates`, detail: run.group, run,
      })), { title: 'ADW: Compare Candidates' }))?.run.group;
    }
    if (!group) return undefined;
    const comparison = await this.candidates.show(group);
    await vscode.commands.executeCommand('adw.candidates.focus');
    return comparison;
  }

  /** Every file the candidate changed, base commit ↔ candidate, in one multi-file diff editor. */
  async showDiff(node?: CandidateNode): Promise<void> {
    const candidate = node?.candidate ?? await this.choose('Show whose changes?', false);
    if (!candidate) return;
    if (!candidate.changes.length) {
      void vscode.window.showInformationMessage(`ADW: candidate ${candidate.number} changed no file.`);
      return;
    }
    // An added file has no original and a deleted one no modified side: the editor then says "added"/"deleted".
    const resources = candidate.changes.map((change) => {
      const [left, right] = this.sides(candidate, change);
      return [right, change.status === 'A' ? undefined : left, change.status === 'D' ? undefined : right];
    });
    await vscode.commands.executeCommand('vscode.changes', this.title(candidate), resources);
  }

  async showFileDiff(candidate: Candidate, change: ChangedFile): Promise<void> {
    const [left, right] = this.sides(candidate, change);
    await vscode.commands.executeCommand('vscode.diff', left, right,
      `${path.basename(change.path)} (${this.title(candidate)})`, { preview: true });
  }

  /** Picks a candidate: merged here after its merge preview is confirmed, or opened as a draft pull request; the
   * other candidates' worktrees are archived either way (`adw worktree restore NAME` brings one back). */
  async pick(node: CandidateNode | undefined, asPullRequest: boolean): Promise<PickResult | undefined> {
    const candidate = node?.candidate ?? await this.choose('Pick which candidate?', true);
    const comparison = this.candidates.comparison;
    if (!candidate || !comparison) return undefined;
    const others = comparison.candidates.filter((c) => c.number !== candidate.number && c.path).map((c) => c.worktree);
    const archiving = others.length ? `The other candidates' worktrees (${others.join(', ')}) are archived; bring one `
      + 'back with `adw worktree restore NAME`.' : 'No other candidate worktree is left to archive.';
    let question: string;
    let detail: string;
    if (asPullRequest) {
      question = `Pick candidate ${candidate.number}: push ${candidate.worktree} and open its draft pull request?`;
      detail = `${candidateFacts(candidate)}\n\n${archiving}`;
    } else {
      const preview = await this.adw.command('mergePreview', candidate.worktree, null, candidate.repo);
      if (!preview.clean) {
        void vscode.window.showWarningMessage(`ADW: candidate ${candidate.number} would conflict with ${preview.target}`, {
          modal: true, detail: `Conflicting files:\n${preview.conflicts.join('\n')}\n\nNothing was merged or archived.`,
        });
        return undefined;
      }
      question = `Pick candidate ${candidate.number}: merge ${preview.source} into ${preview.target}?`;
      // The other candidates conflict with it, as a rule; they are archived, so only other worktrees are worth a warning.
      const activeConflicts = preview.activeConflicts?.filter((c) => !others.includes(c.worktree));
      detail = `${mergeDetail({ ...preview, activeConflicts })}\n\n${archiving}`;
    }
    const answer = await vscode.window.showInformationMessage(question, { modal: true, detail },
      asPullRequest ? 'Open Pull Request' : 'Merge');
    if (!answer) return undefined;
    const result = await vscode.window.withProgress({
      location: vscode.ProgressLocation.Notification,
      title: `ADW: picking candidate ${candidate.number}${asPullRequest ? ' as a pull request' : ''}`,
    }, () => this.adw.command('pick', comparison.group, candidate.number, 'merge', asPullRequest));
    this.candidates.notePick(result);
    await Promise.all([this.candidates.show(comparison.group), this.refresh('all')]);
    const pr = result.pull_request?.pull_request;
    if (pr) {
      const open = await vscode.window.showInformationMessage(`ADW: ${result.message}`, 'Open Pull Request');
      if (open) await vscode.env.openExternal(vscode.Uri.parse(pr.url));
    } else {
      void vscode.window.showInformationMessage(`ADW: ${result.message}`);
    }
    return result;
  }

  async close(): Promise<void> {
    this.candidates.forget();
    await vscode.commands.executeCommand('setContext', COMPARING, false);
  }

  /** The base commit's file, and the candidate's: in its worktree while it exists, else in its archive. */
  private sides(candidate: Candidate, change: ChangedFile): [vscode.Uri, vscode.Uri] {
    const root = candidate.repo ?? this.adw.root?.fsPath ?? '';
    const left = revisionUri(root, candidate.base_commit ?? '', change.path);
    const right = candidate.path && change.status !== 'D' ? vscode.Uri.file(path.join(candidate.path, change.path))
      : revisionUri(root, candidate.tip ?? '', change.path);
    return [left, right];
  }

  private title(candidate: Candidate): string {
    return `base ↔ candidate ${candidate.number}, ${candidate.worktree}`;
  }

  private async choose(title: string, pickable: boolean): Promise<Candidate | undefined> {
    const all = this.candidates.comparison?.candidates ?? [];
    const choices = pickable ? all.filter((c) => c.state === 'succeeded' && c.path) : all;
    if (!choices.length) {
      throw new Error(all.length ? 'no candidate can be picked: none succeeded, or all are archived'
        : 'no comparison open — run "ADW: Compare Candidates (Best of N)" first');
    }
    return (await vscode.window.showQuickPick(choices.map((candidate) => ({
      label: candidateLabel(candidate), description: candidateFacts(candidate), candidate,
    })), { title: `ADW: ${title}` }))?.candidate;
  }
}

export function revisionUri(repo: string, revision: string, file: string): vscode.Uri {
  return vscode.Uri.from({ scheme: REV_SCHEME, path: `/${file}`, query: JSON.stringify({ repo, revision }) });
}

/** `adw-rev:` documents: a file as a commit or tree holds it, read with git (an argument list, never a shell). */
class RevisionDocuments implements vscode.TextDocumentContentProvider {
  constructor(private readonly adw: AdwClient) {}

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    if (!vscode.workspace.isTrusted) return '';
    const { repo, revision } = JSON.parse(uri.query) as { repo: string; revision: string };
    if (!/^[0-9a-f]{7,64}$/.test(revision)) return '';
    const result = await run('git', ['cat-file', 'blob', `${revision}:${uri.path.slice(1)}`], repo);
    if (!result.ok) this.adw.output.debug(`${uri.path.slice(1)} is not in ${revision}: ${result.stderr.trim()}`);
    return result.ok ? result.stdout : ''; // not there: an added (or deleted) file's empty side
  }
}
