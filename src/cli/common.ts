/** What the CLI commands share: the state-location options, opening the director, output helpers. */
import { Command, Option } from 'commander';
import { Director, type DirectorOptions } from '../director/director.js';

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
