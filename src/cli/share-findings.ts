/**
 * doctor's word on sharing an interface (src/director/chain.ts): which mode the interface can use
 * and why -- libxdp's dispatcher where the kernel loads freplace programs, else the tail-call
 * chain -- and what runs there now.
 */
import { probeDispatcher, occupant, ChainMap, CHAIN, type Occupant } from '../director/chain.js';
import { ifIndex } from '../native/index.js';
import type { StatePaths } from '../director/paths.js';
import type { Finding } from './doctor.js';

export function sharingFindings(paths: StatePaths, ifname: string, directorProgId: number | undefined): Finding[] {
  const c = `interface ${ifname} sharing`;
  let ifindex: number;
  let on: Occupant;
  try {
    ifindex = ifIndex(ifname);
    on = occupant(paths, ifname, directorProgId);
  } catch {
    return [];
  }
  const d = probeDispatcher();
  const how = d.usable
    ? `libxdp's dispatcher could run here (${d.reason}), but lvs-xdp shares by tail calls (attach --multiprog)`
    : `by tail calls only (attach --multiprog): ${d.reason}`;
  if (ifindex >= CHAIN.ifs) return [{ verdict: 'info', check: c, detail: `ifindex ${ifindex} is past the tail-call chain's reach (${CHAIN.ifs}): lvs-xdp can only run alone here` }];
  switch (on.kind) {
    case 'root': {
      const chain = ChainMap.open(paths);
      const slots = chain?.slots(ifindex) ?? {};
      chain?.close();
      const list = Object.entries(slots).map(([k, id]) => `${k}: program ${id}`).join(', ') || 'every slot empty';
      return [{ verdict: 'ok', check: c, detail: `lvs-xdp's root (id ${on.id}) runs the chain: ${list}; ${how}` }];
    }
    case 'dispatcher':
      return [{ verdict: 'warn', check: c, detail: `libxdp's dispatcher (id ${on.id}) runs here; lvs-xdp does not join it`, fix: 'unload it (xdp-loader unload IFACE --all), attach with --multiprog and put the other programs in lvs_chain\'s slots' }];
    case 'foreign':
      return [{ verdict: 'info', check: c, detail: `${on.name} (id ${on.id}) runs alone: attach refuses it unless --force; to share, put it in a slot of lvs_chain (${how})` }];
    case 'director':
      return [{ verdict: 'info', check: c, detail: `lvs-xdp runs alone; to share, detach and attach with --multiprog (${how})` }];
    default:
      return [{ verdict: 'info', check: c, detail: `nothing attached; lvs-xdp can share ${how}` }];
  }
}

/** interfaceFindings' "another XDP program" warning is wrong about lvs-xdp's own root. */
export function withoutRootWarning(fs: Finding[], sharing: readonly Finding[]): Finding[] {
  if (!sharing.some((f) => f.verdict === 'ok' && f.detail.startsWith('lvs-xdp\'s root'))) return fs;
  return fs.filter((f) => !(f.verdict === 'warn' && / XDP$/.test(f.check) && f.detail.startsWith('another XDP program')));
}
