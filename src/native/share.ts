/**
 * native/share.cc: a ring buffer map read by polling (`lvs-xdp capture`), the maps a loaded
 * program uses (its .bss and ring, which are not pinned), and program type probes (whether the
 * kernel lets libxdp's dispatcher load its freplace programs).
 */
import { call } from './common.js';
import { BpfMap } from './maps.js';

/** Records of a BPF_MAP_TYPE_RINGBUF map, polled; close() releases the mapping. */
export class RingReader {
  private handle: number | undefined;

  constructor(mapFd: number) {
    this.handle = call({ action: `open ring buffer of map fd ${mapFd}` }, (n) => n.ringbufOpen(mapFd));
  }

  /** Waits up to timeoutMs for records; returns at most `max` (each a copy). */
  poll(timeoutMs: number, max: number): Buffer[] {
    const h = this.handle;
    if (h === undefined) throw new Error('ring buffer reader is closed');
    return call({ action: 'poll ring buffer' }, (n) => n.ringbufPoll(h, timeoutMs, max));
  }

  /** The records ready now, at most `max` (each a copy), without waiting (connection sync reads
   *  on a timer: its ring is written without wakeups). Records past `max` stay for the next call. */
  consume(max: number): Buffer[] {
    const h = this.handle;
    if (h === undefined) throw new Error('ring buffer reader is closed');
    return call({ action: 'consume ring buffer' }, (n) => n.ringbufConsume(h, max));
  }

  close(): void {
    const h = this.handle;
    if (h === undefined) return;
    this.handle = undefined;
    call({ action: 'close ring buffer' }, (n) => n.ringbufClose(h));
  }
}

/** Ids of the maps a loaded program uses. */
export function progMapIds(progFd: number): number[] {
  return call({ action: `read map ids of program fd ${progFd}` }, (n) => n.progMapIds(progFd));
}

/**
 * The first answer `fn` gives (not undefined) for the maps of program `progFd` whose name
 * `match` accepts, each opened for the call and closed after it; undefined when none answers.
 */
export function withProgramMap<T>(progFd: number, match: (name: string) => boolean, fn: (m: BpfMap) => T | undefined): T | undefined {
  for (const id of progMapIds(progFd)) {
    const m = BpfMap.fromId(id);
    try {
      if (!match(m.name)) continue;
      const v = fn(m);
      if (v !== undefined) return v;
    } finally {
      m.close();
    }
  }
  return undefined;
}

/** libbpf's probe of a program type, and the errno a minimal program of that type gets. */
export function probeProgType(type: number): { supported: boolean; errno: string | null } {
  return call({ action: `probe program type ${type}` }, (n) => n.probeProgType(type));
}
