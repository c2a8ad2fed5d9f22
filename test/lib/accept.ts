/**
 * Frames run through a pinned director with BPF_PROG_TEST_RUN arrive on the test process's
 * loopback (ifindex 1) addressed to DIRECTOR_MAC, not on the interface the director is attached
 * to: the director forwards them only when that pair is among its accepted MACs
 * (lvs_l2_addrs). Each CLI command reads the interfaces again and takes the entry away, so the
 * tests put it back before they send (written through the map writer, as every map write is).
 */
import { BpfMap } from '../../src/native/index.js';
import { MapWriter } from '../../src/director/writer.js';
import { syncAcceptedLocked } from '../../src/director/lifecycle.js';
import { DirectorReader } from '../../src/director/reader.js';
import { encodeL2Key, type AcceptedMac } from '../../src/dataplane/l2addrs.js';
import { DIRECTOR_MAC } from './frames.js';
import { TEST_IFINDEX } from './director.js';

const ENTRY: AcceptedMac = { ifindex: TEST_IFINDEX, mac: DIRECTOR_MAC, egress: DIRECTOR_MAC, kind: 'own' };

export function acceptTestRunFrames(pinDir: string): void {
  const m = BpfMap.fromPin(`${pinDir}/lvs_l2_addrs`);
  let present: boolean;
  try {
    present = m.lookup(encodeL2Key(ENTRY.ifindex, ENTRY.mac)) !== null;
  } finally {
    m.close();
  }
  if (present) return;
  const w = MapWriter.fromPins(pinDir);
  try {
    syncAcceptedLocked(w, [...new DirectorReader(w.maps).accepted(), ENTRY]);
  } finally {
    w.close();
  }
}
