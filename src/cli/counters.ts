/** `lvs-xdp counters`: the glossary of named outcomes and drop reasons (from bpf/lvs_abi.h). */
import { Command } from 'commander';
import { COUNTERS } from '../abi/generated.js';

export function formatCounterGlossary(): string {
  const w = Math.max(...COUNTERS.map((c) => c.name.length));
  return COUNTERS.map((c) => `${c.name.toLowerCase().padEnd(w)}  ${c.kind.padEnd(5)}  ${c.description}`).join('\n');
}

export function countersCommand(): Command {
  return new Command('counters')
    .description('list the data plane\'s named outcomes and drop reasons')
    .option('--json', 'machine-readable output')
    .action((opts: { json?: boolean }) => {
      if (opts.json) console.log(JSON.stringify(COUNTERS.map((c) => ({ ...c, name: c.name.toLowerCase() })), null, 2));
      else console.log(formatCounterGlossary());
    });
}
