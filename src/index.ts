/**
 * lvs-xdp as a library, for embedding in another program (an edge router's control daemon):
 *
 *   import { Director, parseConfigText } from 'lvs-xdp';
 *   const d = await Director.attach('eth0', { mode: 'native' });
 *   await d.apply(parseConfigText(yamlText, 'lb.yaml'));
 *   const sample = d.readStats();
 *
 * Every operation the CLI offers is a method of Director; errors are LvsError subclasses with
 * a stable `code`, a `hint` and the CLI's exit code.
 */
export {
  Director, STATE_NAMES,
  type DirectorOptions, type AttachOptions, type ApplyOptions, type ApplyResult, type DirectorStatus,
  type InterfaceStatus, type StatsSample, type ServiceStats, type RealserverStats, type ConnectionInfo, type SizePreset,
  type UpgradeResult, type MapAction,
} from './director/director.js';
export { formatSteps, stepsJson, type Step, type StepOp } from './director/plan.js';
export { statePaths, netnsSuffix, PIN_DIR_ENV, STATE_DIR_ENV, type StatePaths } from './director/paths.js';
export { DEFAULT_SIZES, SMALL_BOX_SIZES, DEFAULT_KNOBS, type DirectorSizes, type Knobs } from './dataplane/loader.js';
export * from './model/index.js';
export { parseConfigText, formatConfigYaml, readConfigFile, desiredConfig } from './config/index.js';
export { parseRule, parseRules, applyCommands, formatSave, formatList, type IpvsadmCommand } from './ipvsadm/index.js';
export { diffConfig, tableMovesFor, formatDiff, type Change, type DiffReport } from './diff/index.js';
export { buildTable } from './sched/index.js';
export { COUNTERS, ABI } from './abi/generated.js';
export {
  LvsError, ExitCode, ConfigError, StateError, NotAttachedError, PermissionError, BpffsError,
  InterfaceNotFoundError, XdpModeError, VerifierError, LayoutError,
} from './errors.js';
