/**
 * The repeat-loop wrappers (bench/bpf/wrap.bpf.c), for `lvs-xdp bench` and the project's own
 * benchmarks: before every run wrap_restore puts the original frame back and wrap_newflow also
 * makes it another flow, then each tail-calls the program under test. Their own cost is measured
 * in front of XDP_DROP in the same run and subtracted by the caller.
 */
import { existsSync } from 'node:fs';
import { BpfObject, type BpfMap, testRun } from '../native/index.js';
import { possibleCpus } from '../native/fds.js';
import { StateError } from '../errors.js';

/** Bytes the wrappers restore before every run: frames must be at least this long. */
export const WRAP_RESTORE = 96;

/**
 * How wrap_newflow varies the frame: the TCP / UDP source port and the source address's last two
 * bytes at these offsets; with `mod` it cycles through mod flows (flow i: port i & 0xffff,
 * address bits i >> 16) instead of a new one every run, and with `ndst` flow i goes to the
 * destination whose last two bytes (at daddrOff) are i % ndst.
 */
export interface FlowWalk { sportOff: number; saddrOff: number; mod?: number; daddrOff?: number; ndst?: number }

export class Wrapper {
  private constructor(private readonly obj: BpfObject, private readonly state: BpfMap, private readonly target: BpfMap) {}

  static async load(path: string): Promise<Wrapper> {
    if (!existsSync(path)) {
      throw new StateError(`the benchmark's repeat wrapper ${path} is missing`, { hint: 'build it: make -C bench/bpf wrap.o (scripts/setup.sh does)' });
    }
    const obj = await BpfObject.open(path);
    return new Wrapper(obj, obj.map('wrap_state'), obj.map('wrap_target'));
  }

  /** Runs `prog` on `frame` `repeat` times through the wrapper: kernel ns per run, last verdict. */
  run(kind: 'restore' | 'newflow', prog: number, frame: Buffer, repeat: number, flow?: FlowWalk, ingressIfindex?: number): { ns: number; retval: number } {
    if (frame.length < WRAP_RESTORE) throw new RangeError(`wrapped frames must be at least ${WRAP_RESTORE} bytes`);
    const st = Buffer.alloc(24 + WRAP_RESTORE);
    st.writeUInt32LE(frame.length, 0);
    st.writeUInt16LE(flow?.sportOff ?? 0, 4);
    st.writeUInt16LE(flow?.saddrOff ?? 0, 6);
    st.writeUInt32LE(flow?.mod ?? 0, 8);
    st.writeUInt16LE(flow?.daddrOff ?? 0, 12);
    st.writeUInt32LE(flow?.ndst ?? 0, 16);
    frame.copy(st, 24, 0, WRAP_RESTORE);
    this.state.update(u32(0), st);
    this.target.update(u32(0), u32(prog));
    const r = testRun(this.obj.progFd(kind === 'restore' ? 'wrap_restore' : 'wrap_newflow'), frame, {
      repeat, dataSizeOut: frame.length + 256, ...(ingressIfindex !== undefined ? { ingressIfindex } : {}),
    });
    return { ns: r.duration, retval: r.retval };
  }

  /** Every CPU's run sequence back to 0: the next wrap_newflow run walks flows from the first
   *  again, on whichever CPU it runs (a SYN pass and the ACK pass of the same flows). */
  resetSeq(): void {
    this.obj.map('wrap_seq').update(u32(0), Buffer.alloc(8 * possibleCpus()));
  }

  close(): void { this.obj.close(); }
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
}
