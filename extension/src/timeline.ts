// The pure parts of the run timeline (unit-tested under plain Node): the runs the picker lists, and the webview's
// page, which shows the SVG the server draws (server/adw/workflow/timeline_render.py).
import type { Workflow } from './protocol';

export interface Run {
  /** What `adw.server.timeline` takes: the run id, or the workflow's own id for one stored before runs. */
  id: string;
  names: string[];
  running: boolean;
  created: number;
}

/** Newest first, each run once, its workflows by name in the order they were made. */
export function runsOf(workflows: Workflow[]): Run[] {
  const runs = new Map<string, Run>();
  for (const workflow of [...workflows].sort((a, b) => a.created_at - b.created_at)) {
    const id = workflow.run_id ?? workflow.id;
    const run = runs.get(id) ?? { id, names: [], running: false, created: workflow.created_at };
    run.names.push(workflow.name);
    run.running ||= workflow.state === 'running' || workflow.state === 'pending';
    runs.set(id, run);
  }
  return [...runs.values()].sort((a, b) => b.created - a.created);
}

/** The webview's page: nothing but its own nonce'd style and script may run (no network, no inline handlers).
 * The extension posts `{ figures, svg }` after the page says it is ready and on each change; a click on a bar
 * posts back `{ workflow, task }`. */
export function timelinePage(nonce: string, title: string): string {
  const csp = `default-src 'none'; style-src 'nonce-${nonce}'; script-src 'nonce-${nonce}';`;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<title>${escapeHtml(title)}</title>
<style nonce="${nonce}">
  body { color: var(--vscode-foreground); font-family: var(--vscode-font-family); padding: 0 1em; }
  #figures { padding-left: 1.2em; } svg { max-width: 100%; height: auto; } .adw-bar { cursor: pointer; }
</style></head>
<body><ul id="figures"><li>Loading…</li></ul><div id="picture"></div>
<script nonce="${nonce}">
  const vscode = acquireVsCodeApi();
  window.addEventListener('message', ({ data }) => {
    document.getElementById('figures').replaceChildren(...data.figures.map((line) => {
      const item = document.createElement('li');
      item.textContent = line;
      return item;
    }));
    document.getElementById('picture').innerHTML = data.svg;
  });
  document.addEventListener('click', (event) => {
    const bar = event.target.closest && event.target.closest('.adw-bar');
    if (bar) vscode.postMessage({ workflow: bar.dataset.workflow, task: bar.dataset.task });
  });
  vscode.postMessage({ ready: true });
</script></body></html>`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] ?? c);
}
