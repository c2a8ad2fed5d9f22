/**
 * ipvsadm's sync daemon commands against lvs-xdp (syntax and listing: src/ipvsadm/daemon.ts):
 *   lvs-xdp --start-daemon master|backup [--mcast-interface IF] [--syncid ID] [--sync-maxlen N]
 *           [--mcast-group ADDR] [--mcast-port PORT] [--mcast-ttl TTL]
 *   lvs-xdp --stop-daemon master|backup
 *   lvs-xdp -L --daemon
 * IPVS runs its daemons in the kernel; lvs-xdp's run inside `lvs-xdp run`. A start or stop is
 * recorded in the state directory and the running `run` follows within a second (this command
 * waits for it and says so); without a running `run` it is recorded for the next one, with a
 * warning. `-L --daemon` lists what `run` runs now, in ipvsadm's format.
 */
import { existsSync } from 'node:fs';
import { ExitCode, NotAttachedError } from '../errors.js';
import { formatDaemonList, parseDaemonArgs, resolveDaemon, type DaemonCommand, type SyncDaemonConfig } from '../ipvsadm/daemon.js';
import { expandShortOptions } from '../ipvsadm/argv.js';
import { statePaths } from '../director/paths.js';
import { readRunHolder, holderAlive } from '../ops/runlock.js';
import { recordSyncDaemon, removeSyncDaemon, runningSyncDaemons, readSyncDaemons } from '../sync/state.js';
import { interfaceMtu } from '../ops/sync-run.js';
import { stateOptions, type StateOpts } from './common.js';

/** The daemon command in an ipvsadm argv (with lvs-xdp's --pin-dir / --state-dir), or undefined. */
export function parseDaemonInvocation(argv: readonly string[]): { cmd: DaemonCommand; state: StateOpts } | undefined {
  const state: StateOpts = {};
  const rest: string[] = [];
  const words = expandShortOptions(argv);
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    const m = /^--(pin-dir|state-dir)(?:=(.*))?$/.exec(w);
    if (!m) {
      rest.push(w);
      continue;
    }
    const v = m[2] ?? words[++i];
    if (v !== undefined) state[m[1] === 'pin-dir' ? 'pinDir' : 'stateDir'] = v;
  }
  const cmd = parseDaemonArgs(rest);
  return cmd ? { cmd, state } : undefined;
}

function runAlive(stateDir: string): boolean {
  const h = readRunHolder(stateDir);
  return h !== undefined && holderAlive(h);
}

async function until(what: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (what()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return what();
}

export async function runDaemonCommand(cmd: DaemonCommand, state: StateOpts): Promise<number> {
  const { stateDir, snapshot } = statePaths(stateOptions(state));
  if (!existsSync(snapshot)) throw new NotAttachedError(`the director is not attached (no ${snapshot}): sync daemons run in lvs-xdp run on an attached director`);
  const running = runAlive(stateDir);
  const daemons = () => runningSyncDaemons(stateDir);
  if (cmd.op === 'list-daemon') {
    process.stdout.write(formatDaemonList(daemons()));
    if (!running && readSyncDaemons(stateDir).length > 0) {
      console.error('lvs-xdp: no lvs-xdp run is running: the recorded sync daemons start with the next run');
    }
    return ExitCode.OK;
  }
  if (cmd.op === 'start-daemon') {
    const d = cmd.daemon;
    // Refused as the kernel refuses it: a group of the wrong kind, settings that cannot work.
    const resolved = resolveDaemon(d, interfaceMtu(d.mcastInterface));
    recordSyncDaemon(stateDir, d);
    if (!running) {
      console.error(`lvs-xdp: warning: no lvs-xdp run is running: the ${d.role} sync daemon is recorded and starts with the next run (sync runs in lvs-xdp run)`);
      return ExitCode.OK;
    }
    const same = (x: SyncDaemonConfig) => x.role === d.role && x.mcastInterface === resolved.mcastInterface && x.syncid === resolved.syncid
      && x.mcastGroup === resolved.mcastGroup && x.mcastPort === resolved.mcastPort;
    const ok = await until(() => daemons().some((x) => same(x) && !('error' in x && x.error)), 5000);
    if (!ok) {
      const st = daemons().find((x) => x.role === d.role);
      if (st && st.source === 'file') console.error(`lvs-xdp: warning: run's configuration file sets the ${d.role} sync daemon (settings.sync): it wins over --start-daemon`);
      else console.error(`lvs-xdp: warning: lvs-xdp run has not started the ${d.role} sync daemon yet${st?.error ? `: ${st.error}` : ''} (it retries every second)`);
    }
    return ExitCode.OK;
  }
  const removed = removeSyncDaemon(stateDir, cmd.role);
  if (!removed) {
    console.error(`lvs-xdp: no ${cmd.role} sync daemon was started with --start-daemon${running && daemons().some((x) => x.role === cmd.role) ? ' (the running one comes from run\'s settings.sync: change the file and reload)' : ''}`);
    return ExitCode.USAGE;
  }
  if (running) await until(() => !daemons().some((x) => x.role === cmd.role && x.source === 'ipvsadm'), 5000);
  return ExitCode.OK;
}
