/**
 * Repeat-loop wrappers (bench/bpf/wrap.bpf.c): restore the original frame before every run (and
 * optionally make it a new flow), then tail-call the program under test. Their cost is measured
 * in front of XDP_DROP in the same run and subtracted by the caller.
 */
import { native as rawNative } from '../../src/native/testing.js';
import { u32 } from './director.js';
import { benchObject } from './objects.js';
import { possibleCpus } from '../../src/native/fds.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const native: any = rawNative();
export const WRAP_RESTORE = 96;

/** How wrap_newflow varies the frame (bench/bpf/wrap.bpf.c); offsets for IPv4 in IPV4_FLOW. */
export interface FlowWalk { sportOff: number; saddrOff: number; mod?: number; daddrOff?: number; ndst?: number }
export const IPV4_FLOW = { sportOff: 34, saddrOff: 28, daddrOff: 32 } as const;

export class Wrapper {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  private constructor(private readonly obj: any) {}

  static async load(): Promise<Wrapper> {
    const o = new (native.BpfObject)();
    o.open(benchObject('wrap.o'));
    await o.load();
    return new Wrapper(o);
  }

  /** Runs `target` on `frame` `repeat` times through the wrapper; kernel ns per run. */
  run(kind: 'restore' | 'newflow', target: number, frame: Buffer, repeat: number, flow?: FlowWalk): { ns: number; retval: number } {
    if (frame.length < WRAP_RESTORE) throw new RangeError(`wrapped frames must be at least ${WRAP_RESTORE} bytes`);
    const st = Buffer.alloc(24 + WRAP_RESTORE);
    st.writeUInt32LE(frame.length, 0);
    st.writeUInt16LE(flow?.sportOff ?? 0, 4);
    st.writeUInt16LE(flow?.saddrOff ?? 0, 6);
    st.writeUInt32LE(flow?.mod ?? 0, 8);
    st.writeUInt16LE(flow?.daddrOff ?? 0, 12);
    st.writeUInt32LE(flow?.ndst ?? 0, 16);
    frame.copy(st, 24, 0, WRAP_RESTORE);
    native.mapUpdate(this.obj.mapFd('wrap_state'), u32(0), st, 0);
    native.mapUpdate(this.obj.mapFd('wrap_target'), u32(0), u32(target), 0);
    const r = native.progTestRun(this.obj.progFd(kind === 'restore' ? 'wrap_restore' : 'wrap_newflow'), frame, { repeat, dataSizeOut: frame.length + 256 });
    return { ns: r.duration, retval: r.retval };
  }

  /** Every CPU's run sequence back to 0: the next wrap_newflow run walks flows from the first
   *  again, on whichever CPU it runs (a SYN pass and the ACK pass of the same flows). */
  resetSeq(): void {
    native.mapUpdate(this.obj.mapFd('wrap_seq'), u32(0), Buffer.alloc(8 * possibleCpus()), 0);
  }

  close(): void { this.obj.close(); }
}
