/** What the CLI commands share: the state-location options, opening the director, output helpers. */
// Types only: the ipvsadm front end shares these helpers and never loads commander.
import type { Command } from 'commander';
import { Director, type ApplyResult, type DirectorOptions } from '../director/director.js';
import { LvsError } from '../errors.js';

export { VERSION } from '../version.js';

export interface StateOpts { pinDir?: string; stateDir?: string }

/** --pin-dir / --state-dir on a command (also read from the program, where they may be given first). */
export function withStateOptions(cmd: Command): Command {
  return cmd
    .addOption(cmd.createOption('--pin-dir <dir>', 'bpffs directory of the pinned state').env('LVS_XDP_PIN_DIR'))
    .addOption(cmd.createOption('--state-dir <dir>', 'directory of the snapshot and lock').env('LVS_XDP_STATE_DIR'));
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
  await resolvePending(d);
  return d;
}

/**
 * Realservers installed unresolved are asked again by every command, before its own work (and
 * its lock): one that answers now gets its slot and table share. A failure here (a route that
 * went away meanwhile) is reported and does not stop the command.
 */
export async function resolvePending(d: Director): Promise<void> {
  try {
    for (const id of await d.resolvePending()) console.error(`lvs-xdp: realserver ${id.replace(/\/([^/]+)$/, ' -> $1')} answers now: it takes new flows`);
  } catch (e) {
    console.error(`lvs-xdp: warning: resolving the unresolved realservers failed: ${e instanceof LvsError ? e.message : String(e)}`);
  }
}

/** After a change: the realservers it installed unresolved, one warning line each (stderr). */
export function warnUnresolved(r: Pick<ApplyResult, 'unresolved'>): void {
  for (const [id, problem] of Object.entries(r.unresolved ?? {})) {
    console.error(`lvs-xdp: warning: ${id.replace(/\/([^/]+)$/, ': realserver $1')} is installed unresolved (${problem}): it takes no new flows until it answers; lvs-xdp run and every lvs-xdp command try again`);
  }
}

/** LVS-NAT needs lvs-xdp on the interface the replies come back on (two-armed: the
 *  realserver-facing one); said after every change and attach while it is missing. */
export function warnNatUnattached(d: { natUnattached: { ifname: string; realservers: string[] }[] }): void {
  for (const u of d.natUnattached) {
    console.error(`lvs-xdp: warning: LVS-NAT realservers are reached through ${u.ifname}, which has no lvs-xdp program: ` +
      `their replies arrive there untranslated and the director cannot send to them; run lvs-xdp attach ${u.ifname} (${u.realservers.join(', ')})`);
  }
}

/**
 * Keeps V8's young generation at the size it starts with (two 1 MiB semi-spaces) for the rest of
 * the process: for a whole-configuration change (`-R`, `apply -f`), which keeps the parsed
 * configuration and its plan alive until the commit. V8 doubles the young generation each time as
 * much as it holds has survived a scavenge, up to two 16 MiB semi-spaces: 32 MiB resident for a
 * few MiB of young objects (`-R` of 1,000 services peaked at 115 MiB, 88 with this; README
 * "Control plane as an operator meets it"). Set now, once the command's modules are loaded, not
 * on node's command line: any V8 flag given at start-up makes node reject the code cache of its
 * built-in modules, +10 ms to every command (measured); set now, only builtins loaded later pay.
 */
export async function boundYoungGeneration(): Promise<void> {
  (await import('node:v8')).setFlagsFromString('--semi-space-growth-factor=1');
}

/** JSON with bigints as numbers when exact, else strings. */
export function toJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? (x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : x.toString()) : x), 2);
}
