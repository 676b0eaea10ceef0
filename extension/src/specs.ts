// Which spec files the Start Parallel SDLC picker offers and pre-selects (no `vscode` import).

export const SPEC_GLOB = 'specs/**/*.md';

export interface SpecChoice {
  path: string;
  picked: boolean;
}

/** Sorted specs, the active editor's spec pre-selected (or every spec when only one exists). */
export function specChoices(paths: string[], activePath: string | undefined): SpecChoice[] {
  const sorted = [...new Set(paths)].sort();
  return sorted.map((path) => ({ path, picked: path === activePath || sorted.length === 1 }));
}
