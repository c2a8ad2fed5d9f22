/**
 * `lvs-xdp capture`'s side of bpf/lvs_capture.h: the capture control in the director program's
 * .bss and its ring buffer (neither pinned: found among the program's maps), the in-kernel
 * filter built from service, realserver and outcome names, and the records read back.
 */
import { BpfMap, RingReader, mapInfo, progMapIds, MapType } from '../native/index.js';
import { StateError, ConfigError } from '../errors.js';
import { COUNTERS, type CounterDef } from '../abi/generated.js';

/** bpf/lvs_capture.h */
export const CAPTURE = {
  snap: 256, none: 0xffffffff, fSvc: 1, fReal: 2, fOutcome: 4, ctlSize: 32, recHead: 40, ring: 'lvs_capture_rb', perCpu: 'lvs_capture_cpu',
} as const;

export interface CaptureFilter {
  svcId?: number;
  realIdx?: number;
  /** lvs_counters indexes (below 64): a packet matches when it counted any of them. */
  outcomes?: readonly number[];
}

export interface CaptureRecord {
  tsNs: bigint; ifindex: number; len: number; action: number; svcId: number | undefined; realIdx: number | undefined;
  counters: CounterDef[]; data: Buffer;
}

export const XDP_ACTIONS = ['XDP_ABORTED', 'XDP_DROP', 'XDP_PASS', 'XDP_TX', 'XDP_REDIRECT'] as const;

/** Counter names (any case) to lvs_counters indexes; an unknown name lists the known ones. */
export function outcomeIndexes(names: readonly string[]): number[] {
  return names.map((n) => {
    const c = COUNTERS.find((x) => x.name === n.toUpperCase().replace(/-/g, '_'));
    if (!c) throw new ConfigError(`unknown outcome ${JSON.stringify(n)}`, { field: '--outcome', hint: `one of: ${COUNTERS.map((x) => x.name.toLowerCase()).join(', ')}` });
    if (c.index >= 64) throw new ConfigError(`outcome ${n}: the capture filter reaches the first 64 counters only`, { field: '--outcome' });
    return c.index;
  });
}

export function parseRecord(b: Buffer): CaptureRecord {
  const svc = b.readUInt32LE(24);
  const real = b.readUInt32LE(28);
  const bits = b.readBigUInt64LE(32);
  const caplen = Math.min(b.readUInt32LE(16), CAPTURE.snap);
  return {
    tsNs: b.readBigUInt64LE(0), ifindex: b.readUInt32LE(8), len: b.readUInt32LE(12), action: b.readUInt32LE(20),
    svcId: svc === CAPTURE.none ? undefined : svc, realIdx: real === CAPTURE.none ? undefined : real,
    counters: COUNTERS.filter((c) => c.index < 64 && (bits >> BigInt(c.index)) & 1n),
    data: Buffer.from(b.subarray(CAPTURE.recHead, CAPTURE.recHead + caplen)),
  };
}

/** A running capture on a loaded director program. */
export class Capture {
  private constructor(private readonly bss: BpfMap, private readonly perCpu: BpfMap, private readonly ring: RingReader) {}

  /** Finds the capture's maps among the program's; throws StateError for a director without them. */
  static open(progFd: number): Capture {
    let bss: BpfMap | undefined;
    let perCpu: BpfMap | undefined;
    let ringFd: BpfMap | undefined;
    for (const id of progMapIds(progFd)) {
      const m = BpfMap.fromId(id);
      const info = mapInfo(m.fd);
      if (info.name.endsWith('.bss') && info.valueSize === CAPTURE.ctlSize) bss = m;
      else if (info.name === CAPTURE.perCpu) perCpu = m;
      else if (info.name === CAPTURE.ring && info.type === MapType.RINGBUF) ringFd = m;
      else m.close();
    }
    if (!bss || !perCpu || !ringFd) {
      for (const m of [bss, perCpu, ringFd]) m?.close();
      throw new StateError('the running director program has no capture maps (an lvs-xdp before capture)', { hint: 'lvs-xdp upgrade' });
    }
    try {
      return new Capture(bss, perCpu, new RingReader(ringFd.fd));
    } finally {
      ringFd.close();
    }
  }

  /** Whether a capture is already switched on (another one runs, or one was killed). */
  get running(): boolean {
    return (this.bss.lookup(Buffer.alloc(4))?.readUInt32LE(0) ?? 0) !== 0;
  }

  /** Switches the capture on: the filter first, `on` in the same write (one value, one syscall). */
  start(filter: CaptureFilter, snaplen: number, rate: number): void {
    this.stop();
    while (this.ring.poll(0, 1024).length > 0); // records of an earlier capture
    this.perCpu.updatePerCpu(Buffer.alloc(4), Buffer.alloc(40)); // its missed counts
    const v = Buffer.alloc(CAPTURE.ctlSize);
    let flags = 0;
    if (filter.svcId !== undefined) flags |= CAPTURE.fSvc;
    if (filter.realIdx !== undefined) flags |= CAPTURE.fReal;
    if (filter.outcomes?.length) flags |= CAPTURE.fOutcome;
    v.writeUInt32LE(1, 0);
    v.writeUInt32LE(flags, 4);
    v.writeUInt32LE(Math.min(snaplen, CAPTURE.snap), 8);
    v.writeUInt32LE(rate, 12);
    v.writeUInt32LE(filter.svcId ?? CAPTURE.none, 16);
    v.writeUInt32LE(filter.realIdx ?? CAPTURE.none, 20);
    v.writeBigUInt64LE((filter.outcomes ?? []).reduce((a, i) => a | (1n << BigInt(i)), 0n), 24);
    this.bss.update(Buffer.alloc(4), v);
  }

  stop(): void {
    this.bss.update(Buffer.alloc(4), Buffer.alloc(CAPTURE.ctlSize));
  }

  poll(timeoutMs: number, max: number): CaptureRecord[] {
    return this.ring.poll(timeoutMs, max).map(parseRecord);
  }

  /** Matching packets not recorded, summed over CPUs: over the rate, and lost to a full ring. */
  missed(): { limited: bigint; lost: bigint } {
    const slots = this.perCpu.lookupPerCpu(Buffer.alloc(4)) ?? [];
    let limited = 0n;
    let lost = 0n;
    for (const s of slots) {
      limited += s.readBigUInt64LE(24);
      lost += s.readBigUInt64LE(32);
    }
    return { limited, lost };
  }

  close(): void {
    this.ring.close();
    this.bss.close();
    this.perCpu.close();
  }
}
