/**
 * `lvs-xdp metrics`: the Prometheus exposition of `run`'s /metrics, read once from the pinned
 * maps, without `run`: the data plane stays observable when no run is active (cron or a systemd
 * timer with --textfile for node_exporter's textfile collector). Health series come from a run
 * that is active (its <state dir>/ops-health.json), as `top` shows them; without one there are
 * none, and reload series belong to `run` alone.
 */
import { runningSyncDaemons } from '../sync/state.js';
import { renameSync, writeFileSync, unlinkSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { Command } from 'commander';
import type { Director } from '../director/director.js';
import { serviceId } from '../model/types.js';
import { realId } from '../dataplane/compile.js';
import { drainOf } from '../director/drain.js';
import { DirectorMetrics, type HealthRow, type MetricsInput } from '../ops/metrics.js';
import { withStateOptions, openDirector, type StateOpts } from './common.js';
import { readHealthFile, type HealthFile } from './top.js';

/** One reading of the director (and of an active run's health) as metrics input. */
export function oneShotInput(d: Director, run: HealthFile | undefined): MetricsInput {
  const unresolved = new Set(d.unresolved.map((u) => `${u.service}/${u.address}`));
  const drains = d.drains;
  const fromRun = new Map(run?.realservers.map((r) => [`${r.service}/${r.address}`, r]));
  const health: HealthRow[] = [];
  for (const svc of d.config.services) {
    for (const r of svc.realservers) {
      const h = fromRun.get(`${serviceId(svc)}/${r.address}`);
      const row: HealthRow = {
        service: serviceId(svc), address: r.address, checks: h?.checks ?? 0, failures: h?.failures ?? 0,
        unresolved: unresolved.has(realId(svc, r)), drained: drainOf(drains, svc, r.address) !== undefined,
      };
      if (h?.configuredWeight !== undefined) row.configuredWeight = h.configuredWeight;
      if (h?.up !== undefined) row.up = h.up;
      if (h?.up !== undefined && h.since) row.since = h.since;
      health.push(row);
    }
  }
  return {
    sample: d.readStats(), interfaces: d.linkStatus(), health, services: run?.services ?? [],
    tables: d.tableDigest(), memory: d.memory(), configChangedAt: d.updatedAt, sync: runningSyncDaemons(d.paths.stateDir),
  };
}

/** Writes `text` to `path` so that a reader sees the old file or the new one, never a part. */
export function writeAtomically(path: string, text: string): void {
  // Same directory, so rename(2) replaces in place; node_exporter reads only *.prom, not the temporary.
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, text, { mode: 0o644 });
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // never written
    }
    throw e;
  }
}

export function metricsCommand(): Command {
  return withStateOptions(new Command('metrics'))
    .description('print the Prometheus metrics of the running director once, from its pinned maps (no run needed)')
    .option('--textfile <path>', 'write them to PATH atomically instead (node_exporter textfile collector: a *.prom file)')
    .action(async (o: StateOpts & { textfile?: string }) => {
      const d = openDirector(o);
      try {
        const m = new DirectorMetrics();
        m.update(oneShotInput(d, readHealthFile(d)));
        const text = await m.text();
        if (o.textfile) writeAtomically(o.textfile, text);
        else process.stdout.write(text);
      } finally {
        d.close();
      }
    });
}
