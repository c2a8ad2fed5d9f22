/**
 * `lvs-xdp run -f FILE`: the long-running director service (systemd-friendly). Applies the file
 * with health checks, keeps it applied, reloads it on SIGHUP, serves /metrics and the status
 * page, logs one line per state change. SIGTERM / SIGINT stop it; the data plane keeps
 * forwarding with the last configuration applied (`lvs-xdp detach` removes it). See src/ops/.
 */
import { Command, Option } from 'commander';
import { ConfigError } from '../errors.js';
import { Operator } from '../ops/operator.js';
import { createLogger, type LogFormat } from '../ops/log.js';
import { withStateOptions, stateOptions, type StateOpts } from './common.js';
import { takeOverRun } from '../ops/runlock.js';
import { statePaths } from '../director/paths.js';

export const DEFAULT_LISTEN = '127.0.0.1:9469';

/** "ADDR:PORT" / "[V6]:PORT" -> host and port. */
export function parseListen(v: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(v) ?? /^([^:]+):(\d+)$/.exec(v);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) throw new ConfigError(`--listen ${JSON.stringify(v)}: expected ADDR:PORT (e.g. 127.0.0.1:9469 or [::1]:9469)`, { field: '--listen' });
  return { host: m[1]!, port };
}

function collect(v: string, prev: string[] | undefined): string[] {
  return [...(prev ?? []), v];
}

function secondsOf(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 1 || n > 86400) throw new ConfigError(`${flag} ${JSON.stringify(v)}: seconds between 1 and 86400`, { field: flag });
    return n;
  };
}

interface RunOpts extends StateOpts {
  file: string; interface?: string[]; mode: 'auto' | 'native' | 'generic'; preset: 'default' | 'small'; force?: boolean;
  listen: string | false; logFormat: LogFormat; logLevel: string; resync: number; takeover?: boolean; handoverGrace: number;
}

export function runCommand(): Command {
  return withStateOptions(new Command('run'))
    .description('keep a configuration file applied, with health checks, metrics and a status page (SIGHUP reloads)')
    .requiredOption('-f, --file <file>', 'YAML or JSON configuration (ipvsadm rules work too, without health checks)')
    .option('-i, --interface <iface>', 'attach to this interface first when not attached yet (repeat for several); without it the director must be attached already', collect)
    .addOption(new Option('--mode <mode>', 'XDP mode for --interface').choices(['auto', 'native', 'generic']).default('auto'))
    .addOption(new Option('--preset <preset>', 'map sizes for a first attach').choices(['default', 'small']).default('default'))
    .option('--force', 'with --interface: replace a foreign XDP program')
    // Also from the environment: until isIpvsadmInvocation stops taking `--listen` for ipvsadm's `--list`.
    .addOption(new Option('--listen <addr:port>', 'HTTP listener for /metrics and the status page').env('LVS_XDP_LISTEN').default(DEFAULT_LISTEN))
    .option('--no-listen', 'no HTTP listener')
    .addOption(new Option('--log-format <format>', 'log lines as JSON or text').choices(['json', 'text']).default('text'))
    .addOption(new Option('--log-level <level>', 'debug logs every check result').choices(['debug', 'info', 'warn', 'error']).default('info'))
    .option('--resync <seconds>', 'how often to compare the running director with the wanted configuration', secondsOf('--resync'), 30)
    .option('--takeover', 'replace the lvs-xdp run already running on this director without withdrawing its VIPs (an upgrade or restart without a route flap)')
    .option('--handover-grace <seconds>', 'after a handover (SIGUSR2, or a new run --takeover) the VIPs stay announced this long for the next run', secondsOf('--handover-grace'), 10)
    .action(async (o: RunOpts) => {
      const log = createLogger(o.logFormat, { level: o.logLevel });
      const listen = o.listen === false ? false : parseListen(o.listen);
      if (o.takeover) {
        const old = await takeOverRun(statePaths(stateOptions(o)).stateDir);
        log.info({ event: 'takeover', ...(old ? { from: old.pid } : {}) }, old ? `took over from lvs-xdp run pid ${old.pid}` : 'no lvs-xdp run to take over: starting');
      }
      // Signal handlers from before start on. A signal that comes while run starts (a script that
      // reloads or stops it as soon as it announces or listens) must neither meet Node's default
      // action (the process ends: no clean withdrawal, no log) nor be lost (Node drops a signal
      // that arrives while its watcher is replaced by another), so each handler is installed once
      // and acts when start is done: a reload then, a stop then.
      let started: Operator | undefined;
      let hupWhileStarting = false;
      let stopWhileStarting: (() => void) | undefined;
      let stopped!: () => void;
      const done = new Promise<void>((resolve) => { stopped = resolve; });
      const reload = () => {
        log.info({ event: 'sighup' }, 'SIGHUP: reloading');
        void started!.reload();
      };
      process.on('SIGHUP', () => {
        if (started) reload();
        else hupWhileStarting = true;
      });
      const onStop = (sig: 'SIGTERM' | 'SIGINT' | 'SIGUSR2') => {
        // SIGUSR2 is a handover: a new run (run --takeover) takes the announced VIPs over; nothing is withdrawn.
        const act = () => void started!.stop(sig, sig === 'SIGUSR2' ? { handover: true } : {}).then(stopped, stopped);
        if (started) act();
        else stopWhileStarting ??= act;
      };
      for (const sig of ['SIGTERM', 'SIGINT', 'SIGUSR2'] as const) process.once(sig, () => onStop(sig));
      started = await Operator.start({ handoverGraceS: o.handoverGrace,
        file: o.file, state: stateOptions(o), logger: log, listen, resyncMs: o.resync * 1000,
        ...(o.interface?.length ? { interfaces: o.interface } : {}),
        attach: { mode: o.mode, preset: o.preset, force: o.force ?? false },
      });
      if (stopWhileStarting) stopWhileStarting();
      else if (hupWhileStarting) reload();
      await done;
    });
}
