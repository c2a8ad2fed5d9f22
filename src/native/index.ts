/**
 * Typed facade over the native libbpf binding: what the rest of the project uses. One module per
 * native/*.cc file; this one only re-exports them.
 *
 * Every call translates raw native errors into the typed errors of src/errors.ts, so callers
 * catch PermissionError, VerifierError, InterfaceNotFoundError... rather than errno strings.
 * Policy (what to load, when to reuse maps) belongs to callers; the facade makes the kernel
 * objects convenient and safe to hold (fds closed once, sizes known) and decides only which
 * refusals of native XDP let 'auto' fall back to generic mode (./xdp.ts). The raw binding and
 * the worker-thread twins that only tests use are in ./testing.ts.
 */
export * from './constants.js';
export type {
  BtfEnumValue,
  BtfMember,
  BtfStruct,
  LinkInfo,
  MapDef,
  MapInfo,
  NativeBinding,
  NativeBpfObject,
  NativeError,
  ProgInfo,
} from './binding.js';
export { BpfMap, perCpuStride, memlockOf, type DumpOptions, type MapCreateOptions, type MapEntries } from './maps.js';
export { BpfObject, type ObjectConfig, type OpenOptions } from './object.js';
export { closeFd, ifIndex, ifName, mapInfo, openPinned, pinObject, possibleCpus, progFdById, progInfo } from './fds.js';
export { XdpLink, attachXdp, xdpQuery, type XdpFallback, type XdpMode, type XdpQuery } from './xdp.js';
export { RingReader, progMapIds, probeProgType, withProgramMap } from './share.js';
export { netlinkDump } from './netlink.js';
export { testRun, testRunEach, type TestRunOptions, type TestRunResult } from './test-run.js';
