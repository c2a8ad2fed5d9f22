/**
 * `lvs-xdp realserver setup | check | teardown`: prepares this host (or the network namespace it
 * runs in: `nsenter --net=/run/netns/NS lvs-xdp realserver ...`) as an LVS-DR or LVS-Tun
 * realserver, checks it, and undoes what setup did.
 */
import { Command } from 'commander';
import { ExitCode } from '../errors.js';
import { check, formatCheck, setup, teardown, type ChangeReport } from '../realserver/index.js';

function collect(v: string, prev: string[] | undefined): string[] {
  return [...(prev ?? []), v];
}

function printReport(r: ChangeReport, json: boolean | undefined): void {
  if (json) {
    console.log(JSON.stringify(r, null, 2));
    return;
  }
  for (const c of r.changed) console.log(`changed    ${c}`);
  for (const u of r.unchanged) console.log(`unchanged  ${u}`);
}

interface Common { mode?: string; vip?: string[]; dev?: string; json?: boolean; pinDir?: string; stateDir?: string }

function paths(o: Common): { pinDir?: string; stateDir?: string } {
  const p: { pinDir?: string; stateDir?: string } = {};
  if (o.pinDir) p.pinDir = o.pinDir;
  if (o.stateDir) p.stateDir = o.stateDir;
  return p;
}

function withCommon(cmd: Command, devHelp: string | null): Command {
  cmd
    .option('--vip <addr>', 'virtual IP address served (repeat for several)', collect)
    .option('--json', 'machine-readable output')
    .option('--pin-dir <dir>', 'bpffs directory for the decapsulation pins (default per network namespace)')
    .option('--state-dir <dir>', 'directory of the state file (default per network namespace)');
  if (devHelp) cmd.option('--dev <iface>', devHelp);
  return cmd;
}

const DEV_HELP = 'interface clients\' packets (or tunnels) arrive on (default: that of the default route, or the only one besides lo)';

export function realserverCommand(): Command {
  const cmd = new Command('realserver').description('set up, check and undo an LVS-DR / LVS-Tun realserver (this network namespace)');

  cmd.addCommand(
    withCommon(new Command('setup'), DEV_HELP)
      .description('configure this host as a realserver (idempotent; every change is recorded for teardown)')
      .requiredOption('--mode <mode>', 'dr or tun')
      .action(async (o: Common) => {
        const r = await setup({ mode: o.mode!, vips: o.vip ?? [], ...(o.dev ? { dev: o.dev } : {}), ...paths(o) });
        printReport(r, o.json);
      }),
  );

  cmd.addCommand(
    withCommon(new Command('check'), DEV_HELP)
      .description('report each realserver requirement as ok / wrong with the fix; exits 1 when something is wrong')
      .requiredOption('--mode <mode>', 'dr or tun')
      .action((o: Common) => {
        const r = check({ mode: o.mode!, vips: o.vip ?? [], ...(o.dev ? { dev: o.dev } : {}), ...paths(o) });
        if (o.json) console.log(JSON.stringify(r, null, 2));
        else {
          console.log(formatCheck(r.items));
          if (r.counters) {
            const nonzero = Object.entries(r.counters).filter(([, v]) => v !== '0');
            console.log(`decap counters: ${nonzero.length ? nonzero.map(([k, v]) => `${k} ${v}`).join(', ') : 'all zero'}`);
          }
          console.log(r.ok ? `realserver (${r.mode}, ${r.dev}): ok` : `realserver (${r.mode}, ${r.dev}): WRONG`);
        }
        if (!r.ok) process.exitCode = ExitCode.FAILURE;
      }),
  );

  cmd.addCommand(
    withCommon(new Command('teardown'), null)
      .description('undo what setup did (only that): for the given mode / VIPs, or everything recorded')
      .option('--mode <mode>', 'dr or tun (default: both)')
      .action(async (o: Common) => {
        const r = await teardown({ ...(o.mode ? { mode: o.mode } : {}), vips: o.vip ?? [], ...paths(o) });
        printReport(r, o.json);
      }),
  );
  return cmd;
}
