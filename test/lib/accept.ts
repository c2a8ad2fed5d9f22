/**
 * Frames run through a pinned director with BPF_PROG_TEST_RUN arrive on the test process's
 * loopback (ifindex 1) addressed to DIRECTOR_MAC, not on the interface the director is attached
 * to: the director forwards them only when that pair is among its accepted MACs (lvs_l2_ifs,
 * lvs_l2_addrs). Each CLI command reads the interfaces again and takes the entry away, so the
 * tests put it back before they send (written through the map writer, as every map write is).
 * `prefix` names the staged maps of an upgrade in progress (`upgrade_`).
 */
import { existsSync } from 'node:fs';
import { BpfMap } from '../../src/native/index.js';
import { MapWriter, type DirectorMaps } from '../../src/director/writer.js';
import { syncAcceptedLocked } from '../../src/director/lifecycle.js';
import { DirectorReader } from '../../src/director/reader.js';
import { encodeL2Key, type AcceptedMac } from '../../src/dataplane/l2addrs.js';
import { DIRECTOR_MAC } from './frames.js';
import { TEST_IFINDEX } from './director.js';

const ENTRY: AcceptedMac = { ifindex: TEST_IFINDEX, mac: DIRECTOR_MAC, egress: DIRECTOR_MAC, kind: 'own' };

/** Returns false when there are no such maps (an older director, or nothing staged). */
export function acceptTestRunFrames(pinDir: string, prefix = ''): boolean {
  const names = ['lvs_l2_ifs', 'lvs_l2_addrs'] as const;
  if (!names.every((n) => existsSync(`${pinDir}/${prefix}${n}`))) return false;
  const maps = Object.fromEntries(names.map((n) => [n, BpfMap.fromPin(`${pinDir}/${prefix}${n}`)])) as unknown as DirectorMaps;
  try {
    if (maps.lvs_l2_addrs.lookup(encodeL2Key(ENTRY.ifindex, ENTRY.mac)) === null) {
      syncAcceptedLocked(new MapWriter(maps), [...new DirectorReader(maps).accepted(), ENTRY]);
    }
  } finally {
    for (const n of names) maps[n].close();
  }
  return true;
}
