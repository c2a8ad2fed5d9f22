/**
 * Raw types of build/Release/lvs_bpf.node (native/*.cc), in one place. Type declarations only:
 * the facade (./index.ts and the modules it re-exports) is what the rest of the project uses.
 *
 * Conventions of the raw layer:
 *  - fds are plain numbers; whoever created one closes it (closeFd), except fds owned by a
 *    BpfObject (mapFd/progFd), which close with the object.
 *  - Failing syscalls throw Error & NativeErrorFields; bad arguments throw TypeError/RangeError.
 *  - Map calls check buffer sizes against the map's own info (one extra syscall per call).
 */

/** Extra fields on errors thrown by the binding. */
export interface NativeErrorFields {
  /** errno name: 'EPERM', 'ENOENT', 'ENODEV', 'EINVAL', 'EOPNOTSUPP', 'ENOTSUPP' (524), ... */
  code: string;
  /** Positive errno number. */
  errno: number;
  /** libbpf function or syscall that failed, e.g. 'bpf_link_create'. */
  syscall: string;
  /** Kernel verifier log (bpf_object__load failures). */
  log?: string;
  /** libbpf's print output captured during the call (holds its own diagnostics). */
  libbpfLog?: string;
}
export type NativeError = Error & NativeErrorFields;

export interface OpenOptionsRaw {
  /** Verifier log buffer size in bytes (default 4 MiB; the kernel keeps the log's tail). */
  logSize?: number;
  /** 0 (default): log only when a load fails; 1/2: verbose logs for every program. */
  logLevel?: number;
}

export interface BtfMember {
  name: string;
  /** Byte offset (bitOffset / 8). */
  offset: number;
  bitOffset: number;
  /** Bitfield width, 0 when not a bitfield. */
  bitSize: number;
  /** Resolved size in bytes (typedefs, arrays and nested structs followed); -1 if unknown. */
  size: number;
}

export interface BtfStruct {
  name: string;
  kind: 'struct' | 'union';
  size: number;
  members: BtfMember[];
}

export interface BtfEnumValue {
  name: string;
  value: number;
}

export interface MapDef {
  name: string;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  /** .rodata / .data / .bss maps libbpf makes for global variables. */
  internal: boolean;
}

/** libbpf bpf_object: open(), configure, load(), use, close(). */
export interface NativeBpfObject {
  open(path: string, opts?: OpenOptionsRaw): void;
  /** Rejects with NativeError; `.log` holds the verifier log. A failed object cannot load again. */
  load(): Promise<void>;
  close(): void;
  readonly loaded: boolean;
  /** Before load: sets a global's initial value; the size must match exactly. */
  setGlobal(name: string, value: Buffer): void;
  getGlobal(name: string): Buffer;
  mapNames(): string[];
  progNames(): string[];
  mapDef(map: string): MapDef;
  setMaxEntries(map: string, maxEntries: number): void;
  reuseMapFd(map: string, fd: number): void;
  /** Pin path for libbpf's auto-pinning at load (undefined clears it). */
  setPinPath(map: string, path?: string): void;
  mapFd(map: string): number;
  progFd(prog: string): number;
  btfStruct(name: string): BtfStruct;
  btfEnum(name: string): BtfEnumValue[];
}

export interface MapCreateOptionsRaw {
  type: number;
  name?: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags?: number;
  innerMapFd?: number;
  numaNode?: number;
  mapExtra?: number;
}

/** A whole-map dump: element i is keys[i*keySize ..] and values[i*valueSize ..]. */
export interface MapDumpRaw {
  count: number;
  keySize: number;
  /** Bytes per value as returned (per-CPU maps: roundup(valueSize, 8) * possibleCpus). */
  valueSize: number;
  keys: Buffer;
  values: Buffer;
  /** False when the map type has no batch op and keys were walked one by one. */
  batched: boolean;
}

export interface BatchCountRaw {
  count: number;
  batched: boolean;
}

export interface MapInfo {
  type: number;
  id: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  name: string;
  btfId: number;
}

export interface ProgInfo {
  id: number;
  type: number;
  name: string;
  /** Hex of the program's 8-byte tag. */
  tag: string;
  /** Bytes of JIT-compiled code; 0 when the program runs interpreted. */
  jitedLen: number;
  /** Totals kept while sysctl kernel.bpf_stats_enabled=1, else 0. */
  runTimeNs: number;
  runCount: number;
}

export interface LinkInfo {
  id: number;
  type: number;
  progId: number;
  /** XDP links: the interface (0 once detached). */
  ifindex?: number;
}

/** The raw attach takes exactly one mode; 'auto' (try native, then generic) is src/native/xdp.ts. */
export type XdpModeRaw = 'native' | 'generic';

export interface XdpQueryRaw {
  attachMode: 'none' | 'native' | 'generic' | 'offload' | 'multi';
  progId: number;
  driverProgId: number;
  skbProgId: number;
  hwProgId: number;
}

export interface TestRunOptionsRaw {
  /** Runs per call (duration is their average). Runs after the first see the previous output. */
  repeat?: number;
  /** BPF_F_TEST_XDP_LIVE_FRAMES = 2: frames really go out (no output data then). */
  flags?: number;
  /** Output buffer size; default input length + 4096. */
  dataSizeOut?: number;
  ingressIfindex?: number;
  rxQueueIndex?: number;
  batchSize?: number;
}

export interface TestRunResultRaw {
  retval: number;
  /** Kernel-measured average ns per repetition. */
  duration: number;
  /** The output frame, exactly data_size_out bytes. */
  data: Buffer;
}

export interface NativeBinding {
  BpfObject: new () => NativeBpfObject;

  mapCreate(opts: MapCreateOptionsRaw): number;
  mapLookup(fd: number, key: Buffer): Buffer | null;
  mapUpdate(fd: number, key: Buffer, value: Buffer, flags?: number): void;
  mapDelete(fd: number, key: Buffer): boolean;
  mapNextKey(fd: number, key: Buffer | null): Buffer | null;
  /**
   * Whole-map dump with BPF_MAP_LOOKUP_BATCH. Falls back to BPF_MAP_GET_NEXT_KEY + lookup
   * (`batched: false`) when the kernel has no batch op for the map type: it answers ENOTSUPP
   * (e.g. PROG_ARRAY; ARRAY_OF_MAPS/HASH_OF_MAPS on older kernels), or EINVAL/EOPNOTSUPP before
   * any element was read. The same rule applies to the update/delete batch calls (e.g. ARRAY and
   * PERCPU_ARRAY have no delete batch; their elements cannot be deleted anyway: EINVAL).
   */
  mapLookupBatch(fd: number, opts?: { batchSize?: number }): MapDumpRaw;
  mapLookupBatchAsync(fd: number, opts?: { batchSize?: number }): Promise<MapDumpRaw>;
  /** keys / values: concatenated elements. */
  mapUpdateBatch(fd: number, keys: Buffer, values: Buffer, flags?: number): BatchCountRaw;
  mapUpdateBatchAsync(fd: number, keys: Buffer, values: Buffer, flags?: number): Promise<BatchCountRaw>;
  /** Missing keys are skipped; count is how many were deleted. */
  mapDeleteBatch(fd: number, keys: Buffer): BatchCountRaw;
  mapDeleteBatchAsync(fd: number, keys: Buffer): Promise<BatchCountRaw>;

  mapInfo(fd: number): MapInfo;
  progInfo(fd: number): ProgInfo;
  linkInfo(fd: number): LinkInfo;
  mapFdById(id: number): number;
  progFdById(id: number): number;
  linkFdById(id: number): number;
  objPin(fd: number, path: string): void;
  objGet(path: string): number;
  closeFd(fd: number): void;
  possibleCpus(): number;
  ifNameToIndex(name: string): number;
  ifIndexToName(ifindex: number): string;

  /**
   * Attaches in exactly `mode`. A refusal throws with the errno and, when the kernel gave one,
   * its reason as a "kernel: ..." line in libbpfLog (fetched by repeating the attach over
   * netlink, since BPF_LINK_CREATE returns no extack).
   */
  xdpAttachLink(progFd: number, ifindex: number, mode: XdpModeRaw): { linkFd: number; mode: XdpModeRaw };
  linkDetach(linkFd: number): void;
  linkUpdate(linkFd: number, newProgFd: number, oldProgFd?: number): void;
  xdpQuery(ifindex: number): XdpQueryRaw;

  /** native/share.cc: a ring buffer map read by polling (records copied), a program's maps, probes. */
  ringbufOpen(mapFd: number): number;
  ringbufPoll(handle: number, timeoutMs: number, max: number): Buffer[];
  /** The records ready now (at most `max`), without waiting: ring_buffer__consume. */
  ringbufConsume(handle: number, max: number): Buffer[];
  ringbufClose(handle: number): void;
  progMapIds(progFd: number): number[];
  probeProgType(type: number): { supported: boolean; errno: string | null };

  /** native/netlink.cc: one netlink request (a whole message) and every message answering it, up to
   *  NLMSG_DONE, concatenated; an NLMSG_ERROR throws its errno. */
  netlinkDump(protocol: number, request: Buffer): Buffer;

  progTestRun(progFd: number, data: Buffer, opts?: TestRunOptionsRaw): TestRunResultRaw;
  progTestRunAsync(progFd: number, data: Buffer, opts?: TestRunOptionsRaw): Promise<TestRunResultRaw>;
  /** `count` runs with repeat=1, each on a fresh copy of `data`; kernel ns per run. */
  progTestRunEach(progFd: number, data: Buffer, count: number, opts?: TestRunOptionsRaw): Float64Array;
  progTestRunEachAsync(progFd: number, data: Buffer, count: number, opts?: TestRunOptionsRaw): Promise<Float64Array>;
}
