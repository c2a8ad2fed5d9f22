/**
 * Configuration files as the director reads them: YAML or JSON in lvs-xdp's format, or an ipvsadm
 * rule file (as `ipvsadm -S` writes it), told apart by content. Used by `apply`, `attach -f` and
 * `run` alike, so it lives below the CLI.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../model/config-error.js';
import { emptyConfig, type DirectorConfig } from '../model/types.js';
import { parseRules, applyCommands } from '../ipvsadm/index.js';
import { parseConfigText } from './parse.js';

/** A file's configuration and whether it was an ipvsadm rule file (which carries no settings). */
export interface ConfigFileContents { config: DirectorConfig; rules: boolean }

/** The configuration in a file (see readConfigFileKind). */
export function readConfigFile(path: string): DirectorConfig {
  return readConfigFileKind(path).config;
}

/**
 * The configuration a file asks for, given the running one: an ipvsadm rule file says nothing
 * about settings (tunnel sources, hash seed, timeouts: `-S` cannot express them) or firewall
 * marks, so the running settings and marks stay, as with `-C` followed by `-R`; a YAML / JSON file is the whole configuration.
 */
export function desiredConfig(file: ConfigFileContents, running: DirectorConfig): DirectorConfig {
  if (!file.rules) return file.config;
  // Nor about marks (ipvsadm -S has no syntax for them, as IPVS's come from iptables): they stay.
  return {
    ...file.config, ...(running.settings !== undefined ? { settings: running.settings } : {}),
    ...(running.marks !== undefined ? { marks: running.marks } : {}),
  };
}

/** A configuration file, either kind (`rules` for an ipvsadm rule file). `-` reads standard input. */
export function readConfigFileKind(path: string): ConfigFileContents {
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

/** Whether a file's first command line is an ipvsadm rule (`-A -t ...`, optionally `ipvsadm -A ...`). */
export function looksLikeIpvsadm(text: string): boolean {
  const first = text.split(/\r?\n/).map((l) => l.trim()).find((l) => l !== '' && !l.startsWith('#'));
  return first !== undefined && /^(ipvsadm\s+)?-[AaCEeDd](\s|$)/.test(first);
}
