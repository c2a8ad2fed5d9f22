/**
 * The lvs-xdp command line. One module per command under src/cli/; errors are LvsErrors that
 * map to documented exit codes (src/errors.ts) and are printed with their hint.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { LvsError, ExitCode } from '../errors.js';
import { countersCommand } from './counters.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(): Command {
  return new Command('lvs-xdp')
    .description('Linux Virtual Server director with an XDP data plane')
    .version(pkg.version)
    .addCommand(countersCommand());
}

try {
  await buildProgram().parseAsync(process.argv);
} catch (e) {
  if (e instanceof LvsError) {
    console.error(`lvs-xdp: ${e.message}${e.hint ? `\nhint: ${e.hint}` : ''}`);
    process.exit(e.exitCode);
  }
  console.error(`lvs-xdp: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(ExitCode.FAILURE);
}
