/**
 * Opens the director object, checks it against the generated skeleton (maps, program, knobs,
 * struct layouts, counters, connection states, ABI version: src/abi/skeleton.ts), applies the
 * load-time knobs and map sizes through the skeleton's typed tables, and loads it. The one way
 * a director is loaded: the CLI, the library API and the packet tests all come through here.
 *
 * Map names, sizes, presets and knobs are generated from bpf/lvs_maps.h (src/abi/generated.ts)
 * and re-exported here under the names the rest of the control plane imports.
 */
import { randomBytes } from 'node:crypto';
import { inInstall } from '../install-root.js';
import { BpfObject } from '../native/index.js';
import { STRUCTS } from '../abi/layout.js';
import {
  ABI,
  DIRECTOR_SKELETON, DIRECTOR_MAPS, DEFAULT_SIZES, SMALL_BOX_SIZES, DEFAULT_KNOBS,
  type DirectorMap, type DirectorSizes, type Knobs,
} from '../abi/generated.js';
import { checkSkeleton, loadGlobals, mapSizes, type AbiObject } from '../abi/skeleton.js';
import { runningGlobalBytes } from '../abi/running.js';

export { DIRECTOR_MAPS, DEFAULT_SIZES, SMALL_BOX_SIZES, DEFAULT_KNOBS, type DirectorMap, type DirectorSizes, type Knobs };
export { ABI_VERSION, DIRECTOR_SKELETON } from '../abi/generated.js';
export { runningAbiVersion } from '../abi/running.js';

export const DIRECTOR_OBJECT = inInstall('bpf', 'lvs_director.o');

export interface LoadedDirector {
  /** The loaded object: closing it closes the program and the maps not pinned meanwhile. */
  obj: BpfObject;
  progFd: number;
  maps: Record<DirectorMap, number>;
  sizes: DirectorSizes;
  /** lvs_synrecv's bucket key as loaded (SYNRECV_KEY_BYTES; see synRecvKeyGlobals). */
  synrecvKey: Buffer;
}

/** The words of lvs_synrecv's bucket key (cfg_key_synrecv0..2 in bpf/lvs_maps.h), in order. */
const SYNRECV_KEY_WORDS = DIRECTOR_SKELETON.globals.filter((g) => g.role === 'key' && g.key === 'synrecv')
  .sort((a, b) => a.word! - b.word!).map((g) => g.name);

/** lvs_synrecv's bucket key: 4 bytes a word (96 bits: jhash's whole state, bpf/lvs_synrecv.h). */
export const SYNRECV_KEY_BYTES = 4 * SYNRECV_KEY_WORDS.length;

/** A new director's lvs_synrecv key: from the kernel's CSPRNG, never derived from the
 *  configuration (the shared hash seed is public to every director of an ECMP group). */
export function newSynRecvKey(): Buffer {
  return randomBytes(SYNRECV_KEY_BYTES);
}

/** The .rodata values that load `key` (little-endian words, as the program reads them). */
export function synRecvKeyGlobals(key: Buffer): Record<string, Buffer> {
  if (key.length !== SYNRECV_KEY_BYTES) throw new RangeError(`lvs_synrecv key: ${key.length} bytes, ${SYNRECV_KEY_BYTES} needed`);
  return Object.fromEntries(SYNRECV_KEY_WORDS.map((n, i) => [n, Buffer.from(key.subarray(i * 4, i * 4 + 4))]));
}

/** The lvs_synrecv key of the loaded program `progFd` (what `lvs-xdp upgrade` carries over);
 *  undefined for a program without one (built before the key: it hashed with hash_seed). */
export function runningSynRecvKey(progFd: number): Buffer | undefined {
  const got = runningGlobalBytes(progFd, SYNRECV_KEY_WORDS);
  if (!SYNRECV_KEY_WORDS.every((n) => got.get(n)?.length === 4)) return undefined;
  return Buffer.concat(SYNRECV_KEY_WORDS.map((n) => got.get(n)!));
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

/** `reuse`: existing maps (fds) by name, e.g. the pinned lvs_chain a root still uses (src/director/chain.ts).
 *  `synrecvKey`: lvs_synrecv's bucket key; by default a new one (newSynRecvKey): each load is a
 *  director of its own, whose SYN_RECV buckets nobody else can compute. */
export async function loadDirector(opts: { path?: string; sizes?: Partial<DirectorSizes>; knobs?: Partial<Knobs>; reuse?: Record<string, number>; synrecvKey?: Buffer } = {}): Promise<LoadedDirector> {
  const sizes: DirectorSizes = { ...DEFAULT_SIZES, ...opts.sizes };
  checkSizes(sizes);
  const knobs: Knobs = { ...DEFAULT_KNOBS, ...opts.knobs };
  const path = opts.path ?? DIRECTOR_OBJECT;
  const synrecvKey = Buffer.from(opts.synrecvKey ?? newSynRecvKey());
  const keyGlobals = synRecvKeyGlobals(synrecvKey);
  const obj = BpfObject.inspect(path);
  try {
    checkAbi(obj, path);
    obj.configure({
      globals: { ...loadGlobals(DIRECTOR_SKELETON, { ...knobs }, { ...sizes }), ...keyGlobals },
      maxEntries: mapSizes(DIRECTOR_SKELETON, { ...sizes }),
      ...(opts.reuse ? { reuseMaps: opts.reuse } : {}),
    });
    await obj.load();
    const maps = Object.fromEntries(DIRECTOR_MAPS.map((m) => [m, obj.map(m).fd])) as Record<DirectorMap, number>;
    return { obj, progFd: obj.progFd(DIRECTOR_SKELETON.program), maps, sizes, synrecvKey };
  } catch (e) {
    obj.close();
    throw e;
  }
}
