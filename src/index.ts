/**
 * lvs-xdp as a library, for embedding in another program (an edge router's control daemon).
 * docs/library.md lists every export below with its purpose and the errors it throws, shows the
 * lifecycle (examples/lifecycle.ts) and says which calls several processes may make at once;
 * test/unit/library-doc.test.ts fails when an export is missing from it or it names one that is
 * not here. Nothing else is public: a deep import ('lvs-xdp/dist/...') is refused by `exports`.
 *
 * Every operation the CLI offers is a method of Director; errors are LvsError subclasses with
 * a stable `code`, a `hint` and the CLI's exit code.
 */
export {
  Director, STATE_NAMES,
  type DirectorOptions, type AttachOptions, type ApplyOptions, type ApplyResult, type DirectorStatus,
  type InterfaceStatus, type StatsSample, type ServiceStats, type RealserverStats, type ConnectionInfo, type SizePreset,
  type UpgradeResult, type MapAction, type DrainScope, type RealserverNote,
} from './director/director.js';
export type { DetachResult } from './director/lifecycle.js';
export type { TableDigest } from './director/digest.js';
export type { Drains } from './director/drain.js';
export type { L2Next } from './dataplane/compile.js';
export type { AcceptedMac } from './dataplane/l2addrs.js';
export type { XdpMode } from './native/xdp.js';
export { formatSteps, stepsJson, type Step, type StepOp } from './director/plan.js';
export { statePaths, netnsSuffix, PIN_DIR_ENV, STATE_DIR_ENV, type StatePaths } from './director/paths.js';
export { DEFAULT_SIZES, SMALL_BOX_SIZES, DEFAULT_KNOBS, type DirectorSizes, type Knobs } from './dataplane/loader.js';
export {
  type Protocol, type Scheduler, type ForwardingMethod, type SchedFlag, type Persistence, type Realserver,
  type VirtualService, type TunnelSettings, type TimeoutSettings, type DirectorSettings, type DirectorConfig,
  PROTOCOLS, SCHEDULERS, FORWARDING_METHODS, MAX_WEIGHT, DEFAULT_TABLE_SIZE, defaultTableSize, tableSizeOf, emptyConfig, serviceId,
} from './model/types.js';
export { canonicalAddress, familyOf, formatAddrPort, canonicalMac, type Family } from './model/address.js';
export { DEFAULT_TIMEOUTS, effectiveTimeouts, type StateTimeouts } from './model/timeouts.js';
export { validateConfig, checkConfig, type Limits, type ConfigIssue, type CheckResult, type FieldPath } from './model/validate.js';
export { parseConfigText, formatConfigYaml, readConfigFile, readConfigFileKind, desiredConfig, type ConfigFileContents } from './config/index.js';
export { parseRule, parseRules, applyCommands, formatSave, type IpvsadmCommand } from './ipvsadm/index.js';
export { diffConfig, tableMovesFor, formatDiff, type Change, type FieldChange, type DiffReport } from './diff/index.js';
export { COUNTERS, type CounterDef, type CounterKind } from './abi/generated.js';
export {
  LvsError, ExitCode, ConfigError, StateError, NotAttachedError, PermissionError, BpffsError,
  InterfaceNotFoundError, XdpModeError, VerifierError, LayoutError, type LvsErrorOptions,
} from './errors.js';
