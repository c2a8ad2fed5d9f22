/**
 * Atomic file replacement for the state directory: a temporary file beside the target (its
 * mode set exactly), written and fsync'ed, then renamed over it. A reader sees the old file or
 * the new one, never a part. (write-file-atomic did this with two more packages to load on every
 * CLI call; a change command pays for each module it loads.)
 */
import { closeSync, fchmodSync, fsyncSync, openSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';

let seq = 0;

export function writeFileAtomicSync(path: string, data: string | Uint8Array, mode: number): void {
  const tmp = `${path}.${process.pid}.${Date.now()}.${seq++}.tmp`;
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'wx', mode);
    fchmodSync(fd, mode);
    writeFileSync(fd, data);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) {
      try { closeSync(fd); } catch { /* already failing */ }
    }
    try { unlinkSync(tmp); } catch { /* not created */ }
    throw e;
  }
}
