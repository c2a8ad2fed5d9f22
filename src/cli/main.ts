/**
 * The lvs-xdp command line. One module per command under src/cli/; errors are LvsErrors that
 * map to documented exit codes (src/errors.ts) and are printed with their hint.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { LvsError, ExitCode } from '../errors.js';
import { countersCommand } from './counters.js';
import { realserverCommand } from './realserver.js';
import { attachCommand, detachCommand } from './attach.js';
import { statusCommand } from './status.js';
import { applyCommand, diffCommand, configCommand } from './apply.js';
import { statsCommand } from './stats.js';
import { doctorCommand } from './doctor.js';
import { runCommand } from './run.js';
import { topCommand } from './top.js';
import { demoCommand } from './demo.js';
import { isIpvsadmInvocation, runIpvsadm } from './ipvsadm.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(): Command {
  return new Command('lvs-xdp')
    .description('Linux Virtual Server director with an XDP data plane')
    .version(pkg.version)
    .addHelpText('after', `
ipvsadm-compatible rules and listings (see README):
  lvs-xdp -A -t VIP:PORT -s mh|sh|dh|rr|wrr [-p [SECONDS]] [-M MASK] [-b FLAGS]
  lvs-xdp -a -t VIP:PORT -r RIP -g|-i [-w WEIGHT] [--mac MAC]     (-E -D -e -d -C likewise)
  lvs-xdp -L -n [--stats | --rate | -c] [--exact] [--json]
  lvs-xdp -S -n > rules;  lvs-xdp -R < rules;  lvs-xdp -Z`)
    .addCommand(realserverCommand())
    .addCommand(attachCommand())
    .addCommand(detachCommand())
    .addCommand(statusCommand())
    .addCommand(applyCommand())
    .addCommand(diffCommand())
    .addCommand(configCommand())
    .addCommand(statsCommand())
    .addCommand(doctorCommand())
    .addCommand(runCommand())
    .addCommand(topCommand())
    .addCommand(countersCommand())
    .addCommand(demoCommand());
}

try {
  const args = process.argv.slice(2);
  if (isIpvsadmInvocation(args)) process.exitCode = await runIpvsadm(args);
  else await buildProgram().parseAsync(process.argv);
} catch (e) {
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
