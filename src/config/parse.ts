/**
 * parseConfigText: the declarative config file (YAML, or JSON which YAML reads too) into a
 * validated DirectorConfig. Every problem becomes a ConfigError naming `file:line:col` and the
 * field's path as written in the file (services[1].realservers[0].weight); never a stack trace.
 */
import { Document, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../model/config-error.js';
import {
  DEFAULT_PERSISTENCE_TIMEOUT, CONFIG_DEFAULT_SCHEDULER, fwmarkVip, type DirectorConfig, type DirectorSettings, type FirewallMark, type MarkMatch, type Realserver,
  type VirtualService,
} from '../model/types.js';
import { parsePorts } from '../model/fwmark.js';
import { formatFieldPath, validateConfig, type FieldPath, type Limits } from '../model/validate.js';
import { FILE_KEY, configFileSchema, type ConfigFile, type MarkEntry as MarkFileEntry, type RealserverEntry, type ServiceEntry } from './schema.js';

/** Locates paths of the parsed document in the source text. */
class SourceMap {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
    private readonly filename: string,
  ) {}

  private where(offset: number): string {
    const { line, col } = this.lines.linePos(offset);
    return `${this.filename}:${line}:${col}`;
  }

  /** The node at `path`, or the deepest existing ancestor; `key` points at a map key instead. */
  locate(path: FieldPath, key = false): string {
    let node: unknown = this.doc.contents;
    let offset = (node as Node | null)?.range?.[0] ?? 0;
    for (let i = 0; i < path.length; i++) {
      const seg = path[i]!;
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
        if (!pair) break;
        const keyNode = pair.key as Node;
        const last = i === path.length - 1;
        if ((last && key) || pair.value === null) {
          offset = keyNode.range?.[0] ?? offset;
          node = pair.value;
          if (last && key) break;
          continue;
        }
        node = pair.value;
      } else if (isSeq(node) && typeof seg === 'number' && seg < node.items.length) {
        node = node.items[seg];
      } else {
        break;
      }
      offset = (node as Node | null)?.range?.[0] ?? offset;
    }
    return this.where(offset);
  }
}

/** Path as written in the file: model names mapped back to file keys. */
function filePath(path: FieldPath): FieldPath {
  return path.map((p) => (typeof p === 'string' ? FILE_KEY[p] ?? p : p));
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (v instanceof Uint8Array) return 'binary data';
  switch (typeof v) {
    case 'object': return 'a mapping';
    case 'string': return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`;
    case 'number': return Number.isInteger(v) ? `the number ${v}` : `the number ${v} (not an integer)`;
    default: return typeof v;
  }
}

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let v = data;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[p as string];
  }
  return v;
}

const EXPECTED: Record<string, string> = {
  number: 'an integer', int: 'an integer', string: 'a string', boolean: 'true or false', array: 'a list', object: 'a mapping',
};

/** One zod issue in operator words, with the path and key-or-value to point at. */
function describeIssue(issue: z.core.$ZodIssue, data: unknown): { path: FieldPath; message: string; atKey: boolean } {
  const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
  const value = valueAt(data, path);
  switch (issue.code) {
    case 'unrecognized_keys': {
      const keys = issue.keys;
      return { path: [...path, keys[0]!], message: `unknown field${keys.length > 1 ? 's' : ''} ${keys.map((k) => JSON.stringify(k)).join(', ')}`, atKey: true };
    }
    case 'invalid_type':
      if (value === undefined) return { path, message: `missing (expected ${EXPECTED[issue.expected] ?? issue.expected})`, atKey: true };
      return { path, message: `expected ${EXPECTED[issue.expected] ?? issue.expected}, got ${typeName(value)}`, atKey: false };
    case 'invalid_union':
      return { path, message: `unexpected ${typeName(value)}`, atKey: false };
    default:
      return { path, message: issue.message, atKey: false };
  }
}

function toSettings(s: NonNullable<ConfigFile['settings']>): DirectorSettings {
  const out: DirectorSettings = {};
  if (s.tunnel) out.tunnel = { ...s.tunnel };
  if (s['hash-seed'] !== undefined) out.hashSeed = s['hash-seed'];
  if (s['expire-nodest-conn'] !== undefined) out.expireNodestConn = s['expire-nodest-conn'];
  if (s['expire-quiescent-template'] !== undefined) out.expireQuiescentTemplate = s['expire-quiescent-template'];
  if (s.announce) {
    out.announce = {
      table: s.announce.table, ...(s.announce.protocol !== undefined ? { protocol: s.announce.protocol } : {}),
      ...(s.announce['bird-socket'] !== undefined ? { birdSocket: s.announce['bird-socket'] } : {}),
    };
  }
  if (s.sync) out.sync = s.sync.map((d) => ({ ...d, ...(d.peers ? { peers: [...d.peers] } : {}) }));
  if (s.timeouts) {
    const t = s.timeouts;
    out.timeouts = {};
    if (t.tcp !== undefined) out.timeouts.tcp = t.tcp;
    if (t['tcp-fin'] !== undefined) out.timeouts.tcpFin = t['tcp-fin'];
    if (t.udp !== undefined) out.timeouts.udp = t.udp;
  }
  return out;
}

function toRealserver(r: RealserverEntry, svcPort: number): Realserver {
  const out: Realserver = {
    address: r.address,
    port: r.port ?? svcPort,
    weight: r.weight ?? 1,
    method: (r.method ?? 'dr') as Realserver['method'],
  };
  if (r.mac !== undefined) out.mac = r.mac;
  if (r['next-hop'] !== undefined) out.nextHop = r['next-hop'];
  if (r.ifname !== undefined) out.ifname = r.ifname;
  if (r['upper-threshold'] !== undefined) out.upperThreshold = r['upper-threshold'];
  if (r['lower-threshold'] !== undefined) out.lowerThreshold = r['lower-threshold'];
  if (r['health-check'] !== undefined) out.healthCheck = r['health-check'];
  return out;
}

/** File entry -> model: ports parsed into ranges, protocol tcp by default. */
function toMark(m: MarkFileEntry): FirewallMark {
  return {
    mark: m.mark,
    match: m.match.map((x) => {
      const list = x.ports === undefined ? [] : Array.isArray(x.ports) ? x.ports : [x.ports];
      const ports = list.flatMap((p) => {
        const r = parsePorts(String(p));
        return typeof r === 'string' ? [] : r; // the schema reported it already
      });
      return { protocol: (x.protocol ?? 'tcp') as MarkMatch['protocol'], address: x.address, ports };
    }),
  };
}

/** File entry -> model with the file's defaults (tcp, mh, weight 1, dr, full netmask). */
function toService(s: ServiceEntry): VirtualService {
  const vip = s.fwmark !== undefined ? fwmarkVip(s.family === 'ipv6' ? 6 : 4) : s.vip!;
  const port = s.fwmark !== undefined ? 0 : s.port!;
  const out: VirtualService = {
    ...(s.fwmark !== undefined ? { fwmark: s.fwmark } : {}),
    protocol: (s.protocol ?? 'tcp') as VirtualService['protocol'],
    vip,
    port,
    scheduler: (s.scheduler ?? CONFIG_DEFAULT_SCHEDULER) as VirtualService['scheduler'],
    flags: (s.flags ?? []) as VirtualService['flags'],
    ops: s.ops ?? false,
    realservers: (s.realservers ?? []).map((r) => toRealserver(r, port)),
  };
  if (s.persistence !== undefined) {
    const p = typeof s.persistence === 'number' ? { timeout: s.persistence } : s.persistence;
    const full = vip.includes(':') ? '128' : '32';
    out.persistence = { timeout: p.timeout ?? DEFAULT_PERSISTENCE_TIMEOUT, netmask: String(p.netmask ?? full) };
  }
  if (s['table-size'] !== undefined) out.tableSize = s['table-size'];
  if (s['health-check'] !== undefined) out.healthCheck = s['health-check'];
  return out;
}

function isJsonName(filename: string, text: string): boolean {
  if (/\.json$/i.test(filename)) return true;
  if (/\.ya?ml$/i.test(filename)) return false;
  return /^\s*[{[]/.test(text);
}

/** Parse and validate a config file's text. `filename` is used for messages and the format. */
export function parseConfigText(text: string, filename: string, limits: Limits = {}): DirectorConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter: lines,
    prettyErrors: false,
    schema: isJsonName(filename, text) ? 'json' : 'core',
    uniqueKeys: true,
  });
  const source = new SourceMap(doc, lines, filename);
  if (doc.errors.length > 0) {
    const err = doc.errors[0]!;
    const pos = err.linePos?.[0] ?? lines.linePos(err.pos[0]);
    throw new ConfigError(err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, ''), {
      location: `${filename}:${pos.line}:${pos.col}`,
    });
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw new ConfigError(`cannot read the document: ${(e as Error).message}`, { location: `${filename}:1:1` });
  }
  if (data === null || data === undefined) {
    throw new ConfigError('the file is empty; a configuration lists its services (`services: []` removes them all)', { location: `${filename}:1:1` });
  }
  const parsed = configFileSchema.safeParse(data);
  if (!parsed.success) {
    // An unknown key is usually a typo that also causes a "missing" issue: report it first.
    const issues = [...parsed.error.issues].sort((a, b) => Number(b.code === 'unrecognized_keys') - Number(a.code === 'unrecognized_keys'));
    const { path, message, atKey } = describeIssue(issues[0]!, data);
    throw new ConfigError(message, { location: source.locate(path, atKey), field: formatFieldPath(path) || undefined });
  }
  const model: DirectorConfig = { services: parsed.data.services.map(toService) };
  if (parsed.data.settings) model.settings = toSettings(parsed.data.settings);
  if (parsed.data.marks) model.marks = parsed.data.marks.map(toMark);
  return validateConfig(model, limits, {
    locate: (path) => source.locate(filePath(path)),
    fieldName: (path) => formatFieldPath(filePath(path)),
  });
}
