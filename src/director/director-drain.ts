/**
 * A drained director (`lvs-xdp drain --director`): it keeps forwarding every packet that reaches
 * it (mid-flow packets of moved connections, new flows the routers still send for a moment), but
 * `lvs-xdp run` withdraws every VIP it announces, so that the ECMP routers move its flows to the
 * other directors. Unlike a service drain, no weight changes: the director stays a full member of
 * the consistent hash, which is what keeps a moved flow on its realserver.
 *
 * The record is a small file in the state directory (run polls it; detach removes it with the
 * rest of the state: a detached director announces nothing anyway).
 */
import { readFileSync, rmSync } from 'node:fs';
import { writeFileAtomicSync } from './atomic.js';

export interface DirectorDrain { since: string }

const FILE = 'director-drain.json';

export function readDirectorDrain(stateDir: string): DirectorDrain | undefined {
  try {
    const v = JSON.parse(readFileSync(`${stateDir}/${FILE}`, 'utf8')) as Partial<DirectorDrain>;
    return typeof v.since === 'string' ? { since: v.since } : undefined;
  } catch {
    return undefined;
  }
}

/** Records the drain (kept if one is recorded already: its start is what status shows). */
export function writeDirectorDrain(stateDir: string, now: string): DirectorDrain {
  const was = readDirectorDrain(stateDir);
  if (was) return was;
  writeFileAtomicSync(`${stateDir}/${FILE}`, `${JSON.stringify({ since: now })}\n`, 0o644);
  return { since: now };
}

/** Ends the drain; false when none was recorded. */
export function clearDirectorDrain(stateDir: string): boolean {
  const was = readDirectorDrain(stateDir) !== undefined;
  rmSync(`${stateDir}/${FILE}`, { force: true });
  return was;
}
