/** What the CLI commands share: the state-location options, opening the director, output helpers. */
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { Director, type DirectorOptions } from '../director/director.js';
import { ConfigError } from '../errors.js';
import { parseConfigText } from '../config/index.js';
import { parseRules, applyCommands } from '../ipvsadm/index.js';
import { emptyConfig, type DirectorConfig } from '../model/types.js';

export { VERSION } from '../version.js';

export interface StateOpts { pinDir?: string; stateDir?: string }

/** --pin-dir / --state-dir on a command (also read from the program, where they may be given first). */
export function withStateOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--pin-dir <dir>', 'bpffs directory of the pinned state').env('LVS_XDP_PIN_DIR'))
    .addOption(new Option('--state-dir <dir>', 'directory of the snapshot and lock').env('LVS_XDP_STATE_DIR'));
}

export function stateOptions(opts: StateOpts): DirectorOptions {
  const o: DirectorOptions = {};
  if (opts.pinDir) o.pinDir = opts.pinDir;
  if (opts.stateDir) o.stateDir = opts.stateDir;
  return o;
}

export function openDirector(opts: StateOpts): Director {
  return Director.open(stateOptions(opts));
}

/** Opens the director and first completes an apply that a killed process left half-done. */
export async function openRepaired(opts: StateOpts): Promise<Director> {
  const d = Director.open(stateOptions(opts));
  // A pending record may also be a change running right now: repair() decides under the lock
  // (and says so when it completes one).
  if (d.interruptedApply) await d.repair();
  return d;
}

/** JSON with bigints as numbers when exact, else strings. */
export function toJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? (x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : x.toString()) : x), 2);
}

/** The configuration in a file (see readConfigFileKind). */
export function readConfigFile(path: string): DirectorConfig {
  return readConfigFileKind(path).config;
}

/**
 * The configuration a file asks for, given the running one: an ipvsadm rule file says nothing
 * about settings (tunnel sources, hash seed, timeouts: `-S` cannot express them), so the running
 * settings stay, as with `-C` followed by `-R`; a YAML / JSON file is the whole configuration.
 */
export function desiredConfig(file: { config: DirectorConfig; rules: boolean }, running: DirectorConfig): DirectorConfig {
  if (!file.rules || running.settings === undefined) return file.config;
  return { ...file.config, settings: running.settings };
}

/**
 * A configuration file: YAML or JSON in lvs-xdp's format, or an ipvsadm rule file (as `-S`
 * writes it, `rules`), told apart by content. `-` reads standard input.
 */
export function readConfigFileKind(path: string): { config: DirectorConfig; rules: boolean } {
  let text: string;
  try {
    text = readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { location: path });
  }
  const name = path === '-' ? '<stdin>' : path;
  if (looksLikeIpvsadm(text)) return { config: applyCommands(emptyConfig(), parseRules(text, name)), rules: true };
  return { config: parseConfigText(text, name), rules: false };
}

export function looksLikeIpvsadm(text: string): boolean {
  const first = text.split(/\r?\n/).map((l) => l.trim()).find((l) => l !== '' && !l.startsWith('#'));
  return first !== undefined && /^(ipvsadm\s+)?-[AaCEeDd](\s|$)/.test(first);
}
