// Multi-root workspaces: the server serves every folder's repository, and the views group their rows by repository
// when there are several (one repository: the rows as they were, with no group row above them).

/** A repository's row in a view; its worktrees or workflows are its children. */
export interface RepositoryNode {
  kind: 'repository';
  repository: string;
  /** Absent, so that a view's node type stays one shape (`node.task?.…` reads on either). */
  workflow?: undefined;
  task?: undefined;
}

export function isRepositoryNode(node: unknown): node is RepositoryNode {
  return typeof node === 'object' && node !== null && (node as { kind?: unknown }).kind === 'repository';
}

/** The top rows of a view: the items themselves for one repository, else one row per repository (first seen
first), each holding the items of that repository. */
export function topRows<T>(items: T[], repositoryOf: (item: T) => string | undefined): (T | RepositoryNode)[] {
  const repositories = [...new Set(items.map(repositoryOf).filter((r): r is string => !!r))];
  if (repositories.length < 2) return items;
  return repositories.map((repository) => ({ kind: 'repository', repository }));
}

export function inRepository<T>(items: T[], repositoryOf: (item: T) => string | undefined, node: RepositoryNode): T[] {
  return items.filter((item) => repositoryOf(item) === node.repository);
}
