// The Worktrees view: one row per worktree of the repository (`adw/worktrees`).
import * as vscode from 'vscode';
import type { AdwClient } from '../client';
import { conflictLines, worktreeDescription, worktreeLabel } from '../format';
import { BranchReview, Requests, ReviewStatus, Worktree } from '../protocol';
import { RepositoryNode, inRepository, isRepositoryNode, topRows } from '../repositories';
import { repositoryItem } from './repositoryItem';

/** How often the view asks for the branches' pull requests; the server asks the forge at most once a minute per
branch anyway, with conditional requests. */
const REVIEW_POLL_MS = 60_000;

/** A branch's key among the reviews: branches of different repositories may share a name. */
function reviewKey(repository: string | undefined, branch: string): string {
  return `${repository ?? ''}\n${branch}`;
}

export class WorktreesProvider implements vscode.TreeDataProvider<Worktree | RepositoryNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  /** The last list the server sent; commands pick from it too. */
  worktrees: Worktree[] = [];
  /** Each branch's pull request and CI state (`adw/pullRequests`, asked of each repository), by `reviewKey`;
   * empty without a forge or a login. */
  reviews = new Map<string, BranchReview>();
  private readonly poller = setInterval(() => void this.loadReviews(), REVIEW_POLL_MS);

  constructor(private readonly adw: AdwClient) {}

  async loadReviews(refresh = false): Promise<void> {
    const reviews = new Map<string, BranchReview>();
    const repositories = [...new Set(this.worktrees.map((w) => w.repository))];
    for (const repository of repositories.length ? repositories : [undefined]) {
      try {
        const status = await this.adw.request<ReviewStatus>(Requests.pullRequests, { refresh, repository });
        for (const review of status.branches) reviews.set(reviewKey(repository, review.branch), review);
        if (!status.available) this.adw.output.debug(`pull requests of ${repository ?? 'the workspace'}: ${status.reason}`);
      } catch (error) {
        this.adw.output.debug(`pull requests of ${repository ?? 'the workspace'}: ${String(error)}`);
      }
    }
    this.reviews = reviews;
    this.changed.fire();
  }

  async load(): Promise<Worktree[]> {
    try {
      this.worktrees = await this.adw.request<Worktree[]>(Requests.worktrees);
    } catch (error) {
      this.adw.output.debug(`worktrees: ${String(error)}`);
      this.worktrees = [];
    }
    this.changed.fire();
    void this.loadReviews();
    return this.worktrees;
  }

  getChildren(element?: Worktree | RepositoryNode): (Worktree | RepositoryNode)[] {
    const shown = this.worktrees.filter((w) => !w.prunable);
    if (!element) return topRows(shown, (w) => w.repository);
    return isRepositoryNode(element) ? inRepository(shown, (w) => w.repository, element) : [];
  }

  getTreeItem(node: Worktree | RepositoryNode): vscode.TreeItem {
    if (isRepositoryNode(node)) return repositoryItem(node);
    const worktree = node;
    const item = new vscode.TreeItem(worktreeLabel(worktree));
    item.id = worktree.path;
    const review = worktree.branch ? this.reviews.get(reviewKey(worktree.repository, worktree.branch)) : undefined;
    item.description = worktreeDescription(worktree, review);
    const pr = review?.pull_request;
    const conflicts = conflictLines(worktree.conflicts ?? []);
    item.tooltip = new vscode.MarkdownString(`**${worktree.name}** — \`${worktree.path}\`\n\n`
      + `${worktree.checkpoints} checkpoint(s)${worktree.locked ? ', locked' : ''}`
      + (pr ? `\n\n[Pull request #${pr.number}](${pr.url})${pr.draft ? ' (draft)' : ''}`
        + (review?.checks ? `, checks: ${review.checks.state}` : '') : '')
      + (conflicts.length ? `\n\nWould conflict with:\n${conflicts.map((line) => `- ${line}`).join('\n')}` : ''));
    item.iconPath = worktree.agentsRunning ? new vscode.ThemeIcon('sync~spin')
      : conflicts.length ? new vscode.ThemeIcon('warning', new vscode.ThemeColor('list.warningForeground'))
        : new vscode.ThemeIcon(worktree.is_main ? 'repo' : 'git-branch');
    item.contextValue = worktree.is_main ? 'worktree.main' : 'worktree';
    item.resourceUri = vscode.Uri.file(worktree.path);
    return item;
  }

  dispose(): void {
    clearInterval(this.poller);
    this.changed.dispose();
  }
}
