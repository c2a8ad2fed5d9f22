/** `lvs-xdp apply -f FILE`, `lvs-xdp diff -f FILE` (dry run) and `lvs-xdp config` (the running one). */
import { Command } from 'commander';
import { parse } from 'yaml';
import { formatConfigYaml } from '../config/index.js';
import { formatDigest } from '../director/digest.js';
import { formatSteps, stepsJson } from '../director/plan.js';
import type { ApplyResult } from '../director/director.js';
import { readConfigFileKind, desiredConfig } from '../config/file.js';
import { withStateOptions, boundYoungGeneration, openRepaired, toJson, warnUnresolved, warnNatUnattached, type StateOpts } from './common.js';

interface FileOpts extends StateOpts { file: string; json?: boolean; dryRun?: boolean; refresh?: boolean; steps?: boolean }

/** The change report, with the plan's steps when asked for (--steps). */
function report(r: ApplyResult, o: FileOpts, extra: Record<string, unknown> = {}): void {
  const steps = o.steps && r.steps ? r.steps : undefined;
  if (o.json) {
    console.log(toJson({ ...extra, ...r.report, ...(steps ? { steps: stepsJson(steps) } : {}) }));
    return;
  }
  console.log(r.changes.length ? r.text.trimEnd() : 'no changes');
  if (steps) console.log(steps.length ? `steps:\n${formatSteps(steps)}` : 'steps: none');
}

export function applyCommand(): Command {
  return withStateOptions(new Command('apply'))
    .description('make a configuration file the running configuration (only the difference is written)')
    .requiredOption('-f, --file <file>', 'YAML, JSON or ipvsadm rules (- for standard input)')
    .option('--dry-run', 'print what would change, change nothing')
    .option('--refresh', 'resolve every realserver MAC again')
    .option('--steps', 'also print the plan: the ordered map writes (resolves MACs in a dry run)')
    .option('--json', 'machine-readable output')
    .action(async (o: FileOpts) => {
      await boundYoungGeneration();
      const file = readConfigFileKind(o.file);
      const d = await openRepaired(o);
      try {
        const desired = desiredConfig(file, d.config);
        const r = await d.apply(desired, { refresh: o.refresh ?? false, dryRun: o.dryRun ?? false, steps: o.steps ?? false });
        warnUnresolved(r);
        if (r.applied) warnNatUnattached(d);
        report(r, o, { applied: r.applied });
      } finally {
        d.close();
      }
    });
}

export function diffCommand(): Command {
  return withStateOptions(new Command('diff'))
    .description('dry run: what applying a file would change, and the share of new flows that would move')
    .requiredOption('-f, --file <file>', 'YAML, JSON or ipvsadm rules (- for standard input)')
    .option('--steps', 'also print the plan: the ordered map writes (resolves MACs)')
    .option('--json', 'machine-readable output')
    .action(async (o: FileOpts) => {
      const file = readConfigFileKind(o.file);
      const d = await openRepaired(o);
      try {
        report(d.plan(desiredConfig(file, d.config), { steps: o.steps ?? false }), o);
      } finally {
        d.close();
      }
    });
}

export function configCommand(): Command {
  return withStateOptions(new Command('config'))
    .description('print the running configuration in the file format (YAML, or --json)')
    .option('--json', 'JSON instead of YAML')
    .option('--digest', 'print the digest of the live lookup tables instead (compare it across directors)')
    .action(async (o: StateOpts & { json?: boolean; digest?: boolean }) => {
      const d = await openRepaired(o);
      try {
        if (o.digest) {
          const t = d.tableDigest();
          process.stdout.write(o.json ? `${JSON.stringify(t, null, 2)}\n` : formatDigest(t));
          return;
        }
        // The JSON form is the YAML document's data: both read back with apply -f.
        if (o.json) console.log(JSON.stringify(parse(formatConfigYaml(d.config)), null, 2));
        else process.stdout.write(formatConfigYaml(d.config));
      } finally {
        d.close();
      }
    });
}

