/** `lvs-xdp status [--json]`: interfaces, mode, program, sizes, memory, fill levels. */
import type { SyncDaemonStatus } from '../sync/state.js';
import { Command } from 'commander';
import { Director, type DirectorStatus } from '../director/director.js';
import { statePaths } from '../director/paths.js';
import { assertBpffs } from '../director/lifecycle.js';
import { ExitCode } from '../errors.js';
import { withStateOptions, stateOptions, toJson, resolvePending, VERSION, type StateOpts } from './common.js';

function mib(n: number): string {
  return `${(n / 1048576).toFixed(1)} MiB`;
}

/** One line per ingress interface: the destination MACs it forwards frames for, and why. */
export function formatAccepted(acc: NonNullable<DirectorStatus['accepted']>, ifs: DirectorStatus['interfaces']): string[] {
  if (acc.length === 0) return ['  accepts     no destination MAC: nothing is forwarded (run any change command to read the interfaces)'];
  const byIf = new Map<number, typeof acc>();
  for (const a of acc) byIf.set(a.ifindex, [...(byIf.get(a.ifindex) ?? []), a]);
  const name = (i: number) => acc.find((a) => a.ifindex === i)?.interface ?? ifs.find((x) => x.ifindex === i)?.name ?? `ifindex ${i} (a bond slave)`;
  return [...byIf].map(([i, list]) => `  accepts     ${name(i)}: ${list.map((a) => `${a.mac} (${a.kind})`).join(', ')}; sends from ${list[0]!.egress}`);
}

export function formatStatus(s: DirectorStatus): string {
  if (!s.attached && s.interfaces.length === 0) return `lvs-xdp ${s.version}: not attached (pin dir ${s.pinDir})\n`;
  const lines = [`lvs-xdp ${s.version}: ${s.attached ? 'attached' : 'loaded, attached to no interface'}`];
  for (const i of s.interfaces) {
    lines.push(`  interface   ${i.name} (ifindex ${i.ifindex}) ${i.mode}${i.sharing === 'chain' ? ' shared by tail calls (lvs_root)' : ''}${i.linked ? '' : ` (LINK MISSING: lvs-xdp attach ${i.name} attaches it again, keeping the configuration)`}, since ${i.attachedAt}`);
    if (i.genericBecause) lines.push(`              generic because ${i.genericBecause}`);
  }
  if (s.accepted) lines.push(...formatAccepted(s.accepted, s.interfaces));
  if (s.program) lines.push(`  program     ${s.program.name} id ${s.program.id} tag ${s.program.tag}`);
  lines.push(`  services    ${s.services} services, ${s.realservers} realservers`);
  if (s.connections) {
    const pct = ((100 * s.connections.entries) / s.connections.max).toFixed(1);
    lines.push(`  conn table  ${s.connections.entries} / ${s.connections.max} entries (${pct}%), ${s.connections.evicted} evicted since load`);
  }
  if (s.sizes) {
    lines.push(`  sizes       services ${s.sizes.maxServices}, realservers ${s.sizes.maxReals}, conns ${s.sizes.maxConns}, persist ${s.sizes.maxPersist}, frags ${s.sizes.maxFrags}`);
  }
  if (s.knobs) lines.push(`  features    ${Object.entries(s.knobs).map(([k, v]) => `${k} ${v ? 'on' : 'off'}`).join(', ')}`);
  if (s.memoryBytes !== undefined) {
    const t = s.tables;
    lines.push(`  memory      ${mib(s.memoryBytes)} in maps${t ? `, lookup tables included (${t.count} table${t.count === 1 ? '' : 's'}, ${t.slots} slots, ${mib(t.memlock)})` : ''}`);
  }
  if (s.tableDigest) lines.push(`  tables      digest ${s.tableDigest} (lvs-xdp config --digest: per service)`);
  lines.push(`  state       ${s.pinDir} (pins), ${s.stateDir} (snapshot)`);
  if (s.pendingApply) lines.push(`  WARNING     an apply started at ${s.pendingApply} did not finish; the next change completes it`);
  for (const u of s.unresolved ?? []) lines.push(`  UNRESOLVED  ${u.service} -> ${u.address} since ${u.since}: ${u.problem} (takes no new flows until it answers)`);
  if (s.directorDrain) lines.push(`  drained     the whole director since ${s.directorDrain.since}: lvs-xdp run announces no VIP (lvs-xdp undrain --director ends it)`);
  for (const x of s.sync ?? []) lines.push(`  sync        ${formatSyncLine(x)}`);
  for (const d of s.drains ?? []) lines.push(`  drained     ${d.address === undefined ? `${d.service} (every realserver)` : `${d.service} -> ${d.address}`} since ${d.since} (lvs-xdp undrain ends it)`);
  return `${lines.join('\n')}\n`;
}

export function statusCommand(): Command {
  return withStateOptions(new Command('status'))
    .description('show whether and where the director is attached (exit 4 when not attached)')
    .option('--json', 'machine-readable output')
    .action(async (o: StateOpts & { json?: boolean }) => {
      const opts = stateOptions(o);
      // Under `ip netns exec` the pins are hidden: "not attached" would be wrong.
      assertBpffs(statePaths(opts));
      let s: DirectorStatus;
      if (!Director.exists(opts)) {
        const p = statePaths(opts);
        s = { attached: false, pinDir: p.pinDir, stateDir: p.stateDir, interfaces: [], services: 0, realservers: 0, version: VERSION };
      } else {
        const d = Director.open(opts);
        try {
          await resolvePending(d);
          s = d.status();
          s.tableDigest = d.tableDigest().digest;
        } finally {
          d.close();
        }
      }
      process.stdout.write(o.json ? `${toJson(s)}\n` : formatStatus(s));
      if (!s.attached) process.exitCode = ExitCode.STATE;
    });
}

/** One sync daemon in `status`: ipvsadm's settings, then what it did. */
export function formatSyncLine(x: SyncDaemonStatus): string {
  const where = `${x.mcastGroup}:${x.mcastPort} on ${x.mcastInterface}, syncid ${x.syncid}${x.peers.length ? `, peers ${x.peers.join(' ')}` : ''}`;
  if (x.error) return `${x.role} ${where}: NOT RUNNING: ${x.error}`;
  if (x.sent) return `${x.role} ${where}: sent ${x.sent.conns} entries, ${x.sent.templates} templates in ${x.sent.messages} messages${x.sent.sendErrors ? `, ${x.sent.sendErrors} send errors` : ''}${x.sent.lastAt ? `, last ${x.sent.lastAt}` : ''}`;
  const r = x.received;
  if (!r) return `${x.role} ${where}`;
  const skipped = Object.entries(r.skipped).map(([k, v]) => `${v} ${k}`).join(', ');
  return `${x.role} ${where}: received ${r.messages} messages (${r.conns} entries, ${r.inserted} inserted${skipped ? `; skipped ${skipped}` : ''})`
    + `${r.invalid + r.filtered ? `, dropped ${r.invalid} invalid, ${r.filtered} of another syncid` : ''}${r.lastAt ? `, last ${r.lastAt} from ${r.lastFrom}` : ''}`;
}
