/**
 * Atomic file replacement for the state directory: a temporary file beside the target (its
 * mode set exactly), written and fsync'ed, then renamed over it. A reader sees the old file or
 * the new one, never a part. (write-file-atomic did this with two more packages to load on every
 * CLI call; a change command pays for each module it loads.)
 */
import { closeSync, fchmodSync, fsyncSync, openSync, renameSync, unlinkSync, writeFileSync, writevSync } from 'node:fs';

let seq = 0;

/** `data`: the content, or its parts in order (written as they are: a large file is not copied into one buffer first). */
export function writeFileAtomicSync(path: string, data: string | Uint8Array | readonly Uint8Array[], mode: number): void {
  const tmp = `${path}.${process.pid}.${Date.now()}.${seq++}.tmp`;
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'wx', mode);
    fchmodSync(fd, mode);
    if (Array.isArray(data)) writeAll(fd, data);
    else writeFileSync(fd, data as string | Uint8Array);
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

function writeAll(fd: number, parts: readonly Uint8Array[]): void {
  const rest = parts.filter((p) => p.length > 0);
  let i = 0;
  while (i < rest.length) {
    // At most IOV_MAX (1024) parts per call; a short write continues where it stopped.
    let n = writevSync(fd, rest.slice(i, i + 1024));
    while (n > 0 && i < rest.length) {
      const first = rest[i]!;
      if (n >= first.length) {
        n -= first.length;
        i++;
      } else {
        rest[i] = first.subarray(n);
        n = 0;
      }
    }
  }
}
