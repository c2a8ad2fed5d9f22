/**
 * Opens the director object, checks that its BTF agrees with our struct layouts and counter
 * names, applies the load-time knobs and map sizes, and loads it. The one way a director is
 * loaded: the CLI, the library API and the packet tests all come through here.
 */
import { fileURLToPath } from 'node:url';
import { loadNative as native } from '../native/load.js';
import type { NativeBpfObject } from '../native/binding.js';
import { LayoutError, translateNativeError } from '../errors.js';
import { layoutDrift } from '../abi/layout.js';
import { COUNTERS } from '../abi/generated.js';

export const DIRECTOR_OBJECT = fileURLToPath(new URL('../../../bpf/lvs_director.o', import.meta.url));

/** Load-time sizes. Memory cost: see the README's "Sizes and memory cost". */
export interface DirectorSizes {
  maxServices: number;
  maxReals: number;
  maxConns: number;
  maxPersist: number;
  maxFrags: number;
}

export const DEFAULT_SIZES: DirectorSizes = { maxServices: 1024, maxReals: 16384, maxConns: 262144, maxPersist: 65536, maxFrags: 8192 };
/** Fits a 128 MB box: about 3 MiB of maps plus tables. */
export const SMALL_BOX_SIZES: DirectorSizes = { maxServices: 64, maxReals: 512, maxConns: 16384, maxPersist: 4096, maxFrags: 1024 };

export interface Knobs { ipv6: boolean; tun: boolean; icmp: boolean; frag: boolean }
export const DEFAULT_KNOBS: Knobs = { ipv6: true, tun: true, icmp: true, frag: true };

export const DIRECTOR_MAPS = ['lvs_services', 'lvs_tables', 'lvs_reals', 'lvs_conns', 'lvs_persist', 'lvs_frags',
  'lvs_cfg', 'lvs_svc_stats', 'lvs_real_stats', 'lvs_counters', 'lvs_rr_cursor', 'lvs_tx_ports', 'lvs_vip_filter'] as const;
export type DirectorMap = (typeof DIRECTOR_MAPS)[number];

export interface LoadedDirector {
  obj: NativeBpfObject;
  progFd: number;
  maps: Record<DirectorMap, number>;
  sizes: DirectorSizes;
}

/** Layout drift between this control plane and the object, as one LayoutError (or none). */
export function checkAbi(obj: NativeBpfObject): void {
  const problems = layoutDrift((name) => {
    try {
      return obj.btfStruct(name);
    } catch {
      return undefined;
    }
  });
  const values = obj.btfEnum('lvs_counter');
  COUNTERS.forEach((c) => {
    const v = values.find((x) => x.name === `LVS_C_${c.name}`);
    if (v?.value !== c.index) problems.push(`counter ${c.name}: index ${v?.value ?? 'missing'} in BTF, ${c.index} here`);
  });
  if (problems.length) throw new LayoutError(`BPF object does not match the control plane:\n  ${problems.join('\n  ')}`);
}

export async function loadDirector(opts: { path?: string; sizes?: Partial<DirectorSizes>; knobs?: Partial<Knobs> } = {}): Promise<LoadedDirector> {
  const sizes = { ...DEFAULT_SIZES, ...opts.sizes };
  const knobs = { ...DEFAULT_KNOBS, ...opts.knobs };
  const Obj = native().BpfObject;
  const obj: NativeBpfObject = new Obj();
  const path = opts.path ?? DIRECTOR_OBJECT;
  try {
    obj.open(path);
    checkAbi(obj);
    obj.setGlobal('cfg_enable_ipv6', Buffer.from([knobs.ipv6 ? 1 : 0]));
    obj.setGlobal('cfg_enable_tun', Buffer.from([knobs.tun ? 1 : 0]));
    obj.setGlobal('cfg_enable_icmp', Buffer.from([knobs.icmp ? 1 : 0]));
    obj.setGlobal('cfg_enable_frag', Buffer.from([knobs.frag ? 1 : 0]));
    obj.setMaxEntries('lvs_services', sizes.maxServices);
    obj.setMaxEntries('lvs_svc_stats', sizes.maxServices);
    obj.setMaxEntries('lvs_rr_cursor', sizes.maxServices);
    obj.setMaxEntries('lvs_tables', 2 * sizes.maxServices);
    obj.setMaxEntries('lvs_reals', sizes.maxReals);
    obj.setMaxEntries('lvs_real_stats', sizes.maxReals);
    obj.setMaxEntries('lvs_conns', sizes.maxConns);
    obj.setMaxEntries('lvs_persist', sizes.maxPersist);
    obj.setMaxEntries('lvs_frags', sizes.maxFrags);
    await obj.load();
  } catch (e) {
    obj.close();
    if (e instanceof LayoutError) throw e;
    throw translateNativeError(e, { action: `load ${path}`, path });
  }
  const maps = Object.fromEntries(DIRECTOR_MAPS.map((m) => [m, obj.mapFd(m)])) as Record<DirectorMap, number>;
  return { obj, progFd: obj.progFd('lvs_director'), maps, sizes };
}
