/**
 * `lvs-xdp fwmark add|del|list`: firewall marks as lvs-xdp classifies them, in iptables' words.
 * The iptables-mangle recipe of an IPVS director
 *   iptables -t mangle -A PREROUTING -p tcp -d 10.0.0.1 --dport 80 -j MARK --set-mark 1
 * becomes
 *   lvs-xdp fwmark add 1 -p tcp -d 10.0.0.1 --dport 80
 * and `ipvsadm -A -f 1 ...` / `-a -f 1 -r RIP` work on it as on IPVS. A mark lives in the running
 * configuration (the config file's `marks:`), so it is applied, saved and restored with it;
 * ipvsadm's -C and -R leave marks alone, as they leave iptables rules.
 */
import { Command } from 'commander';
import { ConfigError } from '../errors.js';
import { parseFwmarkOption } from '../ipvsadm/index.js';
import { formatPorts, formatPrefix, parsePorts, parsePrefix } from '../model/fwmark.js';
import { serviceId, type DirectorConfig, type FirewallMark, type MarkMatch, type Protocol } from '../model/types.js';
import { withStateOptions, openRepaired, toJson, warnUnresolved, type StateOpts } from './common.js';

interface RuleOpts { protocol?: string; destination?: string; dport?: string; dports?: string }
interface MarkOpts extends StateOpts, RuleOpts { json?: boolean }

/** Pure: the rule -p / -d / --dport(s) describe. */
export function markRule(o: RuleOpts): MarkMatch {
  const protocol = o.protocol ?? 'tcp';
  if (protocol !== 'tcp' && protocol !== 'udp') throw new ConfigError(`protocol ${JSON.stringify(protocol)} is not tcp or udp`, { field: '-p' });
  if (o.destination === undefined) throw new ConfigError('a destination is required: -d ADDRESS or -d ADDRESS/PREFIX-LENGTH', { field: '-d' });
  const prefix = parsePrefix(o.destination);
  if (typeof prefix === 'string') throw new ConfigError(prefix, { field: '-d' });
  if (o.dport !== undefined && o.dports !== undefined) throw new ConfigError('give --dport or --dports, not both', { field: '--dports' });
  const ports = parsePorts(o.dport ?? o.dports ?? '');
  if (typeof ports === 'string') throw new ConfigError(ports, { field: o.dport !== undefined ? '--dport' : '--dports' });
  return { protocol: protocol as Protocol, address: formatPrefix(prefix), ports };
}

function sameRule(a: MarkMatch, b: MarkMatch): boolean {
  return a.protocol === b.protocol && a.address === b.address && formatPorts(a.ports) === formatPorts(b.ports);
}

/** Pure: `config` with the rule added to the mark (the mark created when new). */
export function addMarkRule(config: DirectorConfig, mark: number, rule: MarkMatch): DirectorConfig {
  const marks = [...(config.marks ?? [])];
  const i = marks.findIndex((m) => m.mark === mark);
  if (i >= 0 && marks[i]!.match.some((x) => sameRule(x, rule))) {
    throw new ConfigError(`mark ${mark} already has the rule ${describeRule(rule)}`, { field: 'fwmark add' });
  }
  if (i >= 0) marks[i] = { mark, match: [...marks[i]!.match, rule] };
  else marks.push({ mark, match: [rule] });
  marks.sort((a, b) => a.mark - b.mark);
  return { ...config, marks };
}

/** Pure: `config` without the rule (without `rule`: without the whole mark). */
export function deleteMarkRule(config: DirectorConfig, mark: number, rule?: MarkMatch): DirectorConfig {
  const marks = config.marks ?? [];
  const m = marks.find((x) => x.mark === mark);
  if (!m) throw new ConfigError(`mark ${mark} is not defined`, { field: 'fwmark del' });
  let kept: FirewallMark[];
  if (rule === undefined) {
    kept = marks.filter((x) => x !== m);
  } else {
    if (!m.match.some((x) => sameRule(x, rule))) {
      throw new ConfigError(`mark ${mark} has no rule ${describeRule(rule)} (lvs-xdp fwmark list shows its rules)`, { field: 'fwmark del' });
    }
    const match = m.match.filter((x) => !sameRule(x, rule));
    kept = match.length ? marks.map((x) => (x === m ? { mark, match } : x)) : marks.filter((x) => x !== m);
  }
  const out: DirectorConfig = { ...config };
  if (kept.length) out.marks = kept;
  else delete out.marks;
  return out;
}

function describeRule(r: MarkMatch): string {
  return `-p ${r.protocol} -d ${r.address}${r.ports.length ? ` --dport ${formatPorts(r.ports)}` : ''}`;
}

/** Pure: the marks as `lvs-xdp fwmark list` prints them, one rule a line, then their services. */
export function formatMarks(config: DirectorConfig): string {
  const rows = [['mark', 'prot', 'destination', 'ports', 'service']];
  for (const m of config.marks ?? []) {
    const svcs = config.services.filter((s) => s.fwmark === m.mark).map((s) => serviceId(s));
    for (const r of m.match) {
      rows.push([String(m.mark), r.protocol, r.address, formatPorts(r.ports), svcs.length ? svcs.join(', ') : '(none: ipvsadm -A -f MARK adds it)']);
    }
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((v, c) => (c === r.length - 1 ? v : v.padEnd(widths[c]!))).join('  ')).join('\n') + '\n';
}

function ruleOptions(c: Command): Command {
  return c
    .option('-p, --protocol <tcp|udp>', 'protocol (default tcp)')
    .option('-d, --destination <address[/len]>', 'destination address or prefix (a VIP, or many VIPs as one)')
    .option('--dport <ports>', 'destination ports: 80, 80,443, 8000:8099 (default: every port)')
    .option('--dports <ports>', 'the same (iptables multiport spelling)');
}

async function change(o: MarkOpts, edit: (c: DirectorConfig) => DirectorConfig, done: string): Promise<void> {
  const d = await openRepaired(o);
  try {
    const r = await d.apply(edit(d.config));
    warnUnresolved(r);
    console.log(o.json ? toJson(r.report) : done);
  } finally {
    d.close();
  }
}

export function fwmarkCommand(): Command {
  const cmd = new Command('fwmark').description('firewall marks as lvs-xdp classifies them (for ipvsadm -A -f MARK services)');
  cmd.addCommand(ruleOptions(withStateOptions(new Command('add')))
    .description('add a rule to a mark (iptables -t mangle -A PREROUTING -p P -d D --dport X -j MARK --set-mark MARK)')
    .argument('<mark>', 'the mark, 1..4294967295')
    .option('--json', 'machine-readable change report')
    .action(async (mark: string, o: MarkOpts) => {
      const n = parseFwmarkOption('fwmark', mark);
      const rule = markRule(o);
      await change(o, (c) => addMarkRule(c, n, rule), `mark ${n}: added ${describeRule(rule)}`);
    }));
  cmd.addCommand(ruleOptions(withStateOptions(new Command('del')))
    .description('delete one rule of a mark (given -p / -d / --dport), or the whole mark')
    .argument('<mark>', 'the mark')
    .option('--json', 'machine-readable change report')
    .action(async (mark: string, o: MarkOpts) => {
      const n = parseFwmarkOption('fwmark', mark);
      const rule = o.destination !== undefined || o.dport !== undefined || o.dports !== undefined ? markRule(o) : undefined;
      await change(o, (c) => deleteMarkRule(c, n, rule), rule ? `mark ${n}: deleted ${describeRule(rule)}` : `mark ${n} deleted`);
    }));
  cmd.addCommand(withStateOptions(new Command('list'))
    .description('the marks and their rules, and which firewall-mark services use them')
    .option('--json', 'machine-readable')
    .action(async (o: MarkOpts) => {
      const d = await openRepaired(o);
      try {
        process.stdout.write(o.json ? `${toJson(d.config.marks ?? [])}\n` : formatMarks(d.config));
      } finally {
        d.close();
      }
    }));
  return cmd;
}
