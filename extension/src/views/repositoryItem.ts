// The row of a repository in the Worktrees and Workflows views of a multi-root workspace.
import * as path from 'path';
import * as vscode from 'vscode';
import type { RepositoryNode } from '../repositories';

export function repositoryItem(node: RepositoryNode): vscode.TreeItem {
  const item = new vscode.TreeItem(path.basename(node.repository), vscode.TreeItemCollapsibleState.Expanded);
  item.id = `repository:${node.repository}`;
  item.description = node.repository;
  item.tooltip = node.repository;
  item.iconPath = new vscode.ThemeIcon('repo');
  item.contextValue = 'repository';
  item.resourceUri = vscode.Uri.file(node.repository);
  return item;
}
