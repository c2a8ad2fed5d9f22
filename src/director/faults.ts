/**
 * Fault injection for the crash tests: LVS_XDP_KILL_AT=<point> makes the process SIGKILL itself
 * when it reaches that point (`name`, or `name#n` for the n-th time). The points are the
 * boundaries of a change's steps (`step:<op>`, after the step's map writes and before the
 * journal records it), `pending-written`, `before-commit`, `committed`, the attach steps, and
 * the upgrade's (`upgrade-filled`, `-staged`, `-recorded`, `-link-switched` after each link,
 * `-caught-up`, `-pin-replaced` after each pin, `-committed`: src/director/upgrade.ts).
 */
const KILL_AT = process.env.LVS_XDP_KILL_AT;
const seen = new Map<string, number>();

export function faultPoint(point: string): void {
  if (!KILL_AT) return;
  const n = (seen.get(point) ?? 0) + 1;
  seen.set(point, n);
  if (KILL_AT === point || KILL_AT === `${point}#${n}`) process.kill(process.pid, 'SIGKILL');
}
