export type { IpvsadmCommand, ServiceRef, ServiceSpec, RealserverSpec } from './commands.js';
export { parseRule, parseRules, parseAddrPort, parseFwmarkOption } from './parse.js';
export { applyCommands } from './apply.js';
export {
  formatSave, formatList, formatStats, formatRate, formatConnections, formatLargeNumber, destinationKey,
  type ListOptions, type ConnCounts, type StatsRow, type RateRow, type NumbersOptions, type HeaderOptions,
  type ConnectionEntry, type Endpoint, type Counter,
} from './format.js';
export { tokenize } from './tokenize.js';
