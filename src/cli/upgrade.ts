/**
 * `lvs-xdp upgrade [--dry-run] [--json]`: this build's data plane takes over the running director
 * in place, keeping its configuration and connection table (src/director/upgrade.ts), or refuses
 * before anything changes, naming what cannot be carried over.
 */
import { Command } from 'commander';
import { Director, type UpgradeResult } from '../director/director.js';
import { withStateOptions, stateOptions, toJson, type StateOpts } from './common.js';

const ACTION: Record<string, string> = {
  reuse: 'reused as it is',
  rebuild: 'rebuilt from the configuration',
  create: 'created',
  migrate: 'migrated field by field',
};

export function formatUpgrade(r: UpgradeResult): string {
  const from = `lvs-xdp ${r.from.tool} (ABI ${r.from.abi ?? '?'}, program ${r.from.progId})`;
  const to = `lvs-xdp ${r.to.tool} (ABI ${r.to.abi}${r.to.progId !== undefined ? `, program ${r.to.progId}` : ''})`;
  if (r.status === 'current') return `the director already runs this build: ${to}; nothing changed\n`;
  const head = {
    planned: `would upgrade ${from} to lvs-xdp ${r.to.tool} (ABI ${r.to.abi}); nothing changed`,
    upgraded: `upgraded in place: ${from} -> ${to}`,
    resumed: `completed the interrupted upgrade: ${from} -> ${to}`,
  }[r.status];
  const w = Math.max(...r.maps.map((m) => m.name.length));
  const lines = [head, ...r.maps.map((m) => `  ${m.name.padEnd(w)}  ${ACTION[m.action]}${m.entries !== undefined ? ` (${m.entries} entries)` : ''}${m.why && m.action !== 'reuse' ? `: ${m.why}` : ''}`)];
  if (r.links.length) lines.push(`  ${r.status === 'planned' ? 'links to switch' : 'links switched'}: ${r.links.join(', ')}`);
  for (const n of r.notes) lines.push(`  note: ${n}`);
  return `${lines.join('\n')}\n`;
}

export function upgradeCommand(): Command {
  return withStateOptions(new Command('upgrade'))
    .description('take over the running director with this version (configuration and connection table kept)')
    .option('--dry-run', 'compare and say what would be done; change nothing')
    .option('--json', 'machine-readable output')
    .action(async (o: StateOpts & { dryRun?: boolean; json?: boolean }) => {
      const r = await Director.upgrade({ ...stateOptions(o), dryRun: o.dryRun ?? false });
      process.stdout.write(o.json ? `${toJson(r)}\n` : formatUpgrade(r));
    });
}
