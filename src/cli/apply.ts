/** `lvs-xdp apply -f FILE`, `lvs-xdp diff -f FILE` (dry run) and `lvs-xdp config` (the running one). */
import { Command } from 'commander';
import { parse } from 'yaml';
import { formatConfigYaml } from '../config/index.js';
import { withStateOptions, openRepaired, readConfigFileKind, desiredConfig, toJson, type StateOpts } from './common.js';

interface FileOpts extends StateOpts { file: string; json?: boolean; dryRun?: boolean; refresh?: boolean }

export function applyCommand(): Command {
  return withStateOptions(new Command('apply'))
    .description('make a configuration file the running configuration (only the difference is written)')
    .requiredOption('-f, --file <file>', 'YAML, JSON or ipvsadm rules (- for standard input)')
    .option('--dry-run', 'print what would change, change nothing')
    .option('--refresh', 'resolve every realserver MAC again')
    .option('--json', 'machine-readable output')
    .action(async (o: FileOpts) => {
      const file = readConfigFileKind(o.file);
      const d = await openRepaired(o);
      try {
        const desired = desiredConfig(file, d.config);
        const r = o.dryRun ? d.plan(desired) : await d.apply(desired, { refresh: o.refresh ?? false });
        if (o.json) console.log(toJson({ applied: r.applied, ...r.report }));
        else console.log(r.changes.length ? r.text.trimEnd() : 'no changes');
      } finally {
        d.close();
      }
    });
}

export function diffCommand(): Command {
  return withStateOptions(new Command('diff'))
    .description('dry run: what applying a file would change, and the share of new flows that would move')
    .requiredOption('-f, --file <file>', 'YAML, JSON or ipvsadm rules (- for standard input)')
    .option('--json', 'machine-readable output')
    .action(async (o: FileOpts) => {
      const file = readConfigFileKind(o.file);
      const d = await openRepaired(o);
      try {
        const r = d.plan(desiredConfig(file, d.config));
        if (o.json) console.log(toJson(r.report));
        else console.log(r.changes.length ? r.text.trimEnd() : 'no changes');
      } finally {
        d.close();
      }
    });
}

export function configCommand(): Command {
  return withStateOptions(new Command('config'))
    .description('print the running configuration in the file format (YAML, or --json)')
    .option('--json', 'JSON instead of YAML')
    .action(async (o: StateOpts & { json?: boolean }) => {
      const d = await openRepaired(o);
      try {
        // The JSON form is the YAML document's data: both read back with apply -f.
        if (o.json) console.log(JSON.stringify(parse(formatConfigYaml(d.config)), null, 2));
        else process.stdout.write(formatConfigYaml(d.config));
      } finally {
        d.close();
      }
    });
}

