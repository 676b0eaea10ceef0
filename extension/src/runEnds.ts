// Which workflows just ended and whether to say so: the pure part of the run notifications (notifications.ts).
import type { Workflow } from './protocol';

export type NotifySetting = 'all' | 'failures' | 'off';
const ENDED = new Set(['succeeded', 'failed', 'cancelled', 'interrupted']);

/** Workflows that ended since the previous list: seen running (or not seen at all, once a first list is known)
 * and now in an end state. Updates `seen` to the new states. */
export function endedSince(seen: Map<string, string> | undefined, list: Workflow[]): Workflow[] {
  return seen ? list.filter((w) => ENDED.has(w.state) && !ENDED.has(seen.get(w.id) ?? 'new')) : [];
}

export function worthTelling(workflow: Workflow, setting: NotifySetting): boolean {
  return setting === 'all' || (setting === 'failures' && workflow.state !== 'succeeded');
}

/** The toast's text: the workflow, how it ended, and the failed task's reason. */
export function endText(workflow: Workflow): string {
  const failed = workflow.tasks.find((t) => t.state === 'failed');
  const why = failed ? ` in ${failed.phase}: ${failed.reason || 'see its log'}` : workflow.reason ? `: ${workflow.reason}` : '';
  return `ADW: ${workflow.name} ${workflow.state}${why}`;
}
