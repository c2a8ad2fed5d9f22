/**
 * Opens the director object, checks it against the generated skeleton (maps, program, knobs,
 * struct layouts, counters, connection states, ABI version: src/abi/skeleton.ts), applies the
 * load-time knobs and map sizes through the skeleton's typed tables, and loads it. The one way
 * a director is loaded: the CLI, the library API and the packet tests all come through here.
 *
 * Map names, sizes, presets and knobs are generated from bpf/lvs_maps.h (src/abi/generated.ts)
 * and re-exported here under the names the rest of the control plane imports.
 */
import { fileURLToPath } from 'node:url';
import { BpfObject } from '../native/index.js';
import { STRUCTS } from '../abi/layout.js';
import {
  ABI,
  DIRECTOR_SKELETON, DIRECTOR_MAPS, DEFAULT_SIZES, SMALL_BOX_SIZES, DEFAULT_KNOBS,
  type DirectorMap, type DirectorSizes, type Knobs,
} from '../abi/generated.js';
import { checkSkeleton, loadGlobals, mapSizes, type AbiObject } from '../abi/skeleton.js';

export { DIRECTOR_MAPS, DEFAULT_SIZES, SMALL_BOX_SIZES, DEFAULT_KNOBS, type DirectorMap, type DirectorSizes, type Knobs };
export { ABI_VERSION, DIRECTOR_SKELETON } from '../abi/generated.js';
export { runningAbiVersion } from '../abi/running.js';

export const DIRECTOR_OBJECT = fileURLToPath(new URL('../../../bpf/lvs_director.o', import.meta.url));

export interface LoadedDirector {
  /** The loaded object: closing it closes the program and the maps not pinned meanwhile. */
  obj: BpfObject;
  progFd: number;
  maps: Record<DirectorMap, number>;
  sizes: DirectorSizes;
}

/** Every difference between an opened object and the director's skeleton, as one LayoutError. */
export function checkAbi(obj: AbiObject, what: string = DIRECTOR_SKELETON.object): void {
  checkSkeleton(obj, DIRECTOR_SKELETON, STRUCTS, what);
}

/** Sizes the data plane cannot use as given: lvs_synrecv is read in buckets of
 *  LVS_SYNRECV_WAYS slots (bpf/lvs_synrecv.h), so its size is a positive multiple of that. */
export function checkSizes(sizes: DirectorSizes): void {
  const w = ABI.LVS_SYNRECV_WAYS;
  if (!Number.isInteger(sizes.maxSynRecv) || sizes.maxSynRecv < w || sizes.maxSynRecv % w !== 0) {
    throw new RangeError(`maxSynRecv ${sizes.maxSynRecv}: lvs_synrecv holds buckets of ${w} SYN_RECV connections, so its size must be a positive multiple of ${w} (e.g. ${Math.max(w, Math.ceil((sizes.maxSynRecv || 0) / w) * w)})`);
  }
}

/** `reuse`: existing maps (fds) by name, e.g. the pinned lvs_chain a root still uses (src/director/chain.ts). */
export async function loadDirector(opts: { path?: string; sizes?: Partial<DirectorSizes>; knobs?: Partial<Knobs>; reuse?: Record<string, number> } = {}): Promise<LoadedDirector> {
  const sizes: DirectorSizes = { ...DEFAULT_SIZES, ...opts.sizes };
  checkSizes(sizes);
  const knobs: Knobs = { ...DEFAULT_KNOBS, ...opts.knobs };
  const path = opts.path ?? DIRECTOR_OBJECT;
  const obj = BpfObject.inspect(path);
  try {
    checkAbi(obj, path);
    obj.configure({
      globals: loadGlobals(DIRECTOR_SKELETON, { ...knobs }, { ...sizes }),
      maxEntries: mapSizes(DIRECTOR_SKELETON, { ...sizes }),
      ...(opts.reuse ? { reuseMaps: opts.reuse } : {}),
    });
    await obj.load();
    const maps = Object.fromEntries(DIRECTOR_MAPS.map((m) => [m, obj.map(m).fd])) as Record<DirectorMap, number>;
    return { obj, progFd: obj.progFd(DIRECTOR_SKELETON.program), maps, sizes };
  } catch (e) {
    obj.close();
    throw e;
  }
}
