/**
 * The lvs-xdp command line. One module per command under src/cli/; errors are LvsErrors that
 * map to documented exit codes (src/errors.ts) and are printed with their hint.
 */
import { VERSION } from '../version.js';
import type { Command } from 'commander';
import { LvsError, ExitCode } from '../errors.js';
import { isIpvsadmInvocation } from './ipvsadm-detect.js';

type Loader = () => Promise<Command[]>;
/**
 * Command modules are loaded on demand: a rule command loads the director, not the health
 * checker, metrics server and lab (each CLI call is a process of its own, so start-up counts).
 * Order here is the order in --help.
 */
const COMMANDS: [string[], Loader][] = [
  [['attach', 'detach'], async () => { const m = await import('./attach.js'); return [m.attachCommand(), m.detachCommand()]; }],
  [['status'], async () => [(await import('./status.js')).statusCommand()]],
  [['upgrade'], async () => [(await import('./upgrade.js')).upgradeCommand()]],
  [['apply', 'diff', 'config'], async () => { const m = await import('./apply.js'); return [m.applyCommand(), m.diffCommand(), m.configCommand()]; }],
  [['stats'], async () => [(await import('./stats.js')).statsCommand()]],
  [['top'], async () => [(await import('./top.js')).topCommand()]],
  [['metrics'], async () => [(await import('./metrics.js')).metricsCommand()]],
  [['run'], async () => [(await import('./run.js')).runCommand()]],
  [['fwmark'], async () => [(await import('./fwmark.js')).fwmarkCommand()]],
  [['drain', 'undrain'], async () => { const m = await import('./drain.js'); return [m.drainCommand(), m.undrainCommand()]; }],
  [['announce'], async () => [(await import('./announce.js')).announceCommand()]],
  [['doctor'], async () => [(await import('./doctor.js')).doctorCommand()]],
  [['realserver'], async () => [(await import('./realserver.js')).realserverCommand()]],
  [['demo'], async () => [(await import('./demo.js')).demoCommand()]],
  [['counters'], async () => [(await import('./counters.js')).countersCommand()]],
  [['import'], async () => [(await import('./import.js')).importCommand()]],
  [['capture'], async () => [(await import('./capture.js')).captureCommand()]],
  [['sync'], async () => [(await import('./sync.js')).syncCommand()]],
  [['bench'], async () => [(await import('./bench.js')).benchCommand()]],
];


/**
 * A command's modules loaded without msgpackr's native string extractor (msgpackr-extract): its
 * load (detect-libc probing the C library, a second addon) cost ~25 ms of every command's ~130
 * (one `-e` at 10 services: 137 -> 110 ms, interleaved), more than it saves decoding even the
 * 1.5 MB snapshot of 1,000 services, and ~0.4 MiB resident in `run`. msgpackr reads the variable
 * once, as it loads; it is put back so that nothing the command spawns inherits it.
 */
async function loadCommand<T>(load: () => Promise<T>): Promise<T> {
  const had = process.env.MSGPACKR_NATIVE_ACCELERATION_DISABLED;
  process.env.MSGPACKR_NATIVE_ACCELERATION_DISABLED = 'true';
  try {
    return await load();
  } finally {
    if (had === undefined) delete process.env.MSGPACKR_NATIVE_ACCELERATION_DISABLED;
    else process.env.MSGPACKR_NATIVE_ACCELERATION_DISABLED = had;
  }
}

/** The program with the commands `argv` needs: none for --version alone, all of them for help
 *  or an unknown word. */
export async function buildProgram(argv: readonly string[] = []): Promise<Command> {
  const first = argv.find((a) => !a.startsWith('-'));
  const wanted = COMMANDS.filter(([names]) => first !== undefined && names.includes(first));
  const versionOnly = first === undefined && argv.some((a) => a === '-V' || a === '--version');
  // Loaded here, not at start-up: ipvsadm syntax (most rule changes) never needs it.
  const { Command } = await import('commander');
  const program = new Command('lvs-xdp')
    .description('Linux Virtual Server director with an XDP data plane')
    .version(VERSION)
    .addHelpText('after', `
ipvsadm-compatible rules and listings (see README):
  lvs-xdp -A -t VIP:PORT -s mh|sh|dh|rr|wrr [-p [SECONDS]] [-M MASK] [-b FLAGS]
  lvs-xdp -A -f MARK [-6] -s SCHED [-p [SECONDS]]    (marks: lvs-xdp fwmark add MARK -p tcp -d VIP --dport 80,443)
  lvs-xdp -a -t VIP:PORT -r RIP -g|-i [-w WEIGHT] [--mac MAC]     (-E -D -e -d -C likewise)
  lvs-xdp -L -n [--stats | --rate | -c] [--exact] [--json]
  lvs-xdp -S -n > rules;  lvs-xdp -R < rules;  lvs-xdp -Z
  lvs-xdp -L --timeout;  lvs-xdp --set TCP TCPFIN UDP`);
  if (!versionOnly) for (const [, load] of wanted.length ? wanted : COMMANDS) for (const c of await loadCommand(load)) program.addCommand(c);
  // Usage errors (unknown command or option, missing argument) exit 2, as documented.
  const override = (c: Command): void => {
    c.exitOverride();
    c.commands.forEach(override);
  };
  override(program);
  return program;
}

try {
  const args = process.argv.slice(2);
  // `--version` alone: what commander would print, without loading it.
  if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) console.log(VERSION);
  else if (isIpvsadmInvocation(args)) process.exitCode = await (await loadCommand(() => import('./ipvsadm.js'))).runIpvsadm(args);
  else await (await buildProgram(args)).parseAsync(process.argv);
} catch (e) {
  // A CommanderError or subclass (commander is loaded only for subcommands): codes `commander.*`.
  const ce = e as { code?: unknown; exitCode?: unknown } | undefined;
  if (typeof ce?.code === 'string' && ce.code.startsWith('commander.') && typeof ce.exitCode === 'number') {
    process.exit(ce.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE);
  }
  if (e instanceof LvsError) {
    console.error(`lvs-xdp: ${e.message}${e.hint ? `\nhint: ${e.hint}` : ''}`);
    process.exit(e.exitCode);
  }
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EACCES' || code === 'EPERM') {
    // A file or directory of the state that only root may touch.
    console.error(`lvs-xdp: ${(e as Error).message}\nhint: run as root (the pinned state and snapshot are root-only; BPF and XDP need CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON)`);
    process.exit(ExitCode.PERMISSION);
  }
  console.error(`lvs-xdp: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(ExitCode.FAILURE);
}
