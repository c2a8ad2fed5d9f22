/**
 * One `lvs-xdp run` per director: two would revert each other's changes as drift. The first
 * holds <state dir>/run.json (pid, start time, file); a second is refused with a message naming
 * it. A file left by a run that is gone (killed, the machine restarted) is taken over: the pid
 * must be alive AND have the start time recorded (pids are reused).
 */
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync, rmdirSync, readdirSync } from 'node:fs';
import { StateError } from '../errors.js';
import { startTime } from '../director/lock.js';

export interface RunHolder { pid: number; since: string; file: string; starttime?: string }

/** Whether the run recorded in `h` is still running. */
export function holderAlive(h: RunHolder): boolean {
  const st = startTime(h.pid);
  return st !== undefined && (h.starttime === undefined || st === h.starttime);
}

export function readRunHolder(stateDir: string): RunHolder | undefined {
  try {
    return JSON.parse(readFileSync(`${stateDir}/run.json`, 'utf8')) as RunHolder;
  } catch {
    return undefined;
  }
}

/**
 * Takes the run lock of `stateDir`; returns its release. Refuses while another run holds it.
 * `since` is this run's start (ISO).
 */
export function acquireRunLock(stateDir: string, file: string, since: string): () => void {
  const path = `${stateDir}/run.json`;
  let made = false;
  try {
    readdirSync(stateDir);
  } catch {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    made = true;
  }
  const me: RunHolder = { pid: process.pid, since, file, ...(startTime(process.pid) ? { starttime: startTime(process.pid)! } : {}) };
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const h = readRunHolder(stateDir);
      if (h && h.pid !== process.pid && holderAlive(h)) {
        throw new StateError(`another lvs-xdp run is running on this director (pid ${h.pid}, since ${h.since}, file ${h.file})`, {
          hint: `two would undo each other's changes; stop it first (kill ${h.pid}), or reload it with kill -HUP ${h.pid}`,
        });
      }
      // Left by a run that is gone (or being written right now: the next attempt reads it whole).
      if (h || attempt > 0) rmSync(path, { force: true });
      continue;
    }
    try {
      writeSync(fd, `${JSON.stringify(me)}\n`);
    } finally {
      closeSync(fd);
    }
    return () => {
      if (readRunHolder(stateDir)?.pid === process.pid) rmSync(path, { force: true });
      if (made) {
        try {
          if (readdirSync(stateDir).length === 0) rmdirSync(stateDir);
        } catch {
          // gone already
        }
      }
    };
  }
  throw new StateError(`cannot take the run lock ${path}`, { hint: 'another lvs-xdp run is starting at the same time' });
}

/**
 * `lvs-xdp run --takeover`: asks the run holding `stateDir` to hand over (SIGUSR2: it stops its
 * checks and listener and exits without withdrawing the VIPs) and waits until it let go of the
 * lock. Returns the run taken over, undefined when none was running.
 */
export async function takeOverRun(stateDir: string, timeoutMs = 30_000): Promise<RunHolder | undefined> {
  const h = readRunHolder(stateDir);
  if (!h || h.pid === process.pid || !holderAlive(h)) return undefined;
  process.kill(h.pid, 'SIGUSR2');
  const end = Date.now() + timeoutMs;
  while (holderAlive(h) && readRunHolder(stateDir)?.pid === h.pid) {
    if (Date.now() > end) throw new StateError(`the running lvs-xdp run (pid ${h.pid}) did not hand over within ${timeoutMs / 1000} s`, { hint: 'see its log' });
    await new Promise((r) => setTimeout(r, 20));
  }
  return h;
}
