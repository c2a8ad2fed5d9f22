/**
 * The director's lock: one mutating CLI process at a time. A directory created with mkdir (atomic)
 * holding its owner's pid and process start time. A lock whose owner is dead (SIGKILL, power
 * loss of a container) is taken over at once, by an atomic rename, instead of after an mtime
 * timeout: an owner doing long synchronous work (compiling 65537-slot tables) is never mistaken
 * for a dead one, and a crashed one never blocks the next command for long.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { StateError } from '../errors.js';

/** Field 22 of /proc/PID/stat: start time in clock ticks since boot (tells a reused pid apart). */
export function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function ownerAlive(lock: string): boolean | undefined {
  let text: string;
  try {
    text = readFileSync(`${lock}/owner`, 'utf8');
  } catch {
    return undefined; // being created, or its creator died before writing the owner
  }
  // Caught between the owner's create and write: empty or partial, so not yet known.
  const m = /^(\d+) (\d+)\n$/.exec(text);
  if (!m) return undefined;
  return startTime(Number(m[1])) === m[2];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The director's lock: `<state dir>/lock`. */
export async function acquireLock(dir: string, timeoutMs = 60_000): Promise<() => void> {
  return acquireLockAt(`${dir}/lock`, {
    timeoutMs, busyHint: 'another lvs-xdp command is changing this director; retry when it has finished',
  });
}

/**
 * Takes the lock directory `lock` (created with mkdir, owner recorded inside), waiting while a
 * live process holds it; the realserver commands use the same lock with their own path.
 */
export async function acquireLockAt(lock: string, opts: { timeoutMs?: number; busyHint: string }): Promise<() => void> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  let wait = 10;
  for (;;) {
    try {
      mkdirSync(lock, { mode: 0o700 });
      writeFileSync(`${lock}/owner`, `${process.pid} ${startTime(process.pid) ?? ''}\n`, { mode: 0o600 });
      return () => rmSync(lock, { recursive: true, force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        const code = (e as NodeJS.ErrnoException).code;
        throw new StateError(`could not create the lock ${lock}: ${code ?? (e as Error).message}`, {
          hint: code === 'ENOSPC' ? 'the file system is full; nothing was changed' : 'check the state directory (--state-dir)',
        });
      }
    }
    const alive = ownerAlive(lock);
    let stale = alive === false;
    if (alive === undefined) {
      try {
        stale = Date.now() - statSync(lock).mtimeMs > 5000;
      } catch {
        continue; // released meanwhile
      }
    }
    if (stale) {
      // Only one of several waiters wins the rename; the others retry.
      const aside = `${lock}.stale-${process.pid}-${Date.now()}`;
      try {
        renameSync(lock, aside);
        rmSync(aside, { recursive: true, force: true });
      } catch {
        // someone else took it over
      }
      continue;
    }
    if (Date.now() > deadline) {
      throw new StateError(`the lock ${lock} has been held for over ${Math.round(timeoutMs / 1000)} s`, { hint: opts.busyHint });
    }
    await sleep(wait);
    wait = Math.min(wait * 2, 200);
  }
}
