/**
 * The repeat-loop wrappers for the project's benchmarks: src/bench/wrap.ts (what `lvs-xdp bench`
 * uses too), loaded from the bench objects built on first use.
 */
import { Wrapper } from '../../src/bench/wrap.js';
import { benchObject } from './objects.js';

export { Wrapper, WRAP_RESTORE, type FlowWalk } from '../../src/bench/wrap.js';

/** wrap_newflow's offsets in the IPv4 TCP frames of test/lib/frames.ts (no VLAN, no options). */
export const IPV4_FLOW = { sportOff: 34, saddrOff: 28, daddrOff: 32 } as const;

export function loadWrapper(): Promise<Wrapper> {
  return Wrapper.load(benchObject('wrap.o'));
}
