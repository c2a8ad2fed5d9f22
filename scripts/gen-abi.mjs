#!/usr/bin/env node
// Generates the typed skeletons of the BPF objects from their C headers, the single source of
// truth, in the spirit of bpftool's skeletons and cilium/ebpf's bpf2go:
//   bpf/lvs_abi.h + bpf/lvs_maps.h          -> src/abi/generated.ts (director)
//   bpf/lvs_decap.h + bpf/lvs_decap_maps.h  -> src/abi/decap-generated.ts (decapsulator)
// Constants, counters, connection states and the timeout order, map names / types / key and
// value types / default sizes, and the .rodata globals (knobs with types and defaults, the ABI
// version). The README's counter glossaries and knob table are refreshed between their markers.
// Struct layouts are not generated: src/abi/layout.ts describes them; the generated skeleton
// names the structs the object must carry, and src/abi/skeleton.ts checks all of it against the
// object's BTF at every load (test/unit/abi-btf.test.ts checks the built objects).
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** `#define LVS_X <number>` constants (with `(1u << n)` forms). */
export function parseConstants(text) {
  const constants = {};
  for (const m of text.matchAll(/^#define\s+(LVS_[A-Z0-9_]+)\s+\(?\s*(0x[0-9a-fA-F]+|\d+)u?\s*(?:<<\s*(\d+))?\)?/gm)) {
    const base = Number(m[2]);
    constants[m[1]] = m[3] ? base * 2 ** Number(m[3]) : base;
  }
  return constants;
}

/** Constants and the counter X-macro list of an ABI header. */
export function parseAbiHeader(text, listName = 'LVS_COUNTER_LIST') {
  return { constants: parseConstants(text), counters: parseXList(text, listName, ['name', 'kind', 'description']) };
}

/** Entries of `#define LIST(X) X(a, b, "text") ...`: fields named by `fields`, plus index. */
export function parseXList(text, listName, fields) {
  const list = text.match(new RegExp(`#define ${listName}\\(X\\)([\\s\\S]*?)\\n\\s*\\n`));
  if (!list) throw new Error(`${listName} not found`);
  const plain = fields.slice(0, -1).map(() => '\\s*(\\w+)\\s*,').join('');
  const out = [];
  for (const m of list[1].matchAll(new RegExp(`X\\(${plain}\\s*"((?:[^"\\\\]|\\\\.)*)"\\)`, 'g'))) {
    const e = { index: out.length };
    fields.forEach((f, i) => { e[f] = m[i + 1]; });
    out.push(e);
  }
  return out;
}

const SCALARS = { __u8: ['u8', 1], __u16: ['u16', 2], __u32: ['u32', 4], __u64: ['u64', 8] };

function typeName(c) {
  const t = c.trim().replace(/^struct\s+/, '');
  return SCALARS[t]?.[0] ?? t;
}

/** camelCase of an upper-snake suffix: MAX_SERVICES -> maxServices. */
function camel(s) {
  return s.toLowerCase().replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
}

/**
 * The object's interface from its maps header: every `struct {...} name SEC(".maps");` (a
 * trailing `/* private` comment keeps a map out of the control plane's set), every
 * `const volatile <scalar> name = value;` global, the size presets (LVS_<PRESET>_MAX_<X>) and
 * the structs and enums the ABI anchor keeps in BTF. `constants` resolves fixed sizes.
 */
export function parseMapsHeader(text, constants) {
  const value = (expr) => {
    const e = expr.trim();
    if (/^\d+$/.test(e)) return Number(e);
    if (e in constants) return constants[e];
    throw new Error(`cannot evaluate ${e}`);
  };
  const maps = [];
  for (const m of text.matchAll(/struct\s*\{([^{}]*)\}\s*(\w+)\s+SEC\("\.maps"\);([^\n]*)/g)) {
    const [, body, name, trailer] = m;
    const field = (f) => body.match(new RegExp(`__(?:uint|type|array)\\(${f},\\s*([^)]+)\\)`))?.[1];
    const type = field('type')?.replace(/^BPF_MAP_TYPE_/, '');
    const max = field('max_entries');
    // A ring buffer has neither key nor value ('none': 0 bytes).
    const key = field('key') ?? (type === 'RINGBUF' ? 'none' : undefined);
    const val = field('value') ?? (field('values') ? '__u32' : type === 'RINGBUF' ? 'none' : undefined); // map-in-map: an fd
    if (!type || !max || !key || !val) throw new Error(`map ${name}: type, max_entries, key and value needed`);
    const spec = { name, type, key: typeName(key), value: typeName(val) };
    const sized = max.match(/^(?:(\d+)\s*\*\s*)?LVS_DEFAULT_(MAX_\w+)$/);
    if (sized) {
      const factor = Number(sized[1] ?? 1);
      spec.maxEntries = factor * value(`LVS_DEFAULT_${sized[2]}`);
      spec.size = { param: camel(sized[2]), factor };
    } else {
      spec.maxEntries = value(max);
    }
    spec.private = /\/\*\s*private\b/.test(trailer);
    maps.push(spec);
  }
  const globals = [];
  for (const m of text.matchAll(/^const volatile (__u8|__u16|__u32|__u64) (\w+) = (\w+);[ \t]*(?:\/\*\s*(.*?)\s*\*\/)?/gm)) {
    const [, ctype, name, def, comment] = m;
    const [type, size] = SCALARS[ctype];
    const g = { name, type, size, default: value(def), description: comment ?? '' };
    const knob = name.match(/^cfg_enable_(\w+)$/);
    if (knob) Object.assign(g, { role: 'knob', knob: camel(knob[1]) });
    else if (/_abi_version$/.test(name)) g.role = 'version';
    else if (/^cfg_size_(\w+)$/.test(name)) Object.assign(g, { role: 'size', param: camel(name.slice('cfg_size_'.length)) });
    else if (/^cfg_key_([a-z]+)(\d)$/.test(name)) {
      const [, key, word] = name.match(/^cfg_key_([a-z]+)(\d)$/);
      Object.assign(g, { role: 'key', key, word: Number(word) }); // word `word` of a load-time key (e.g. lvs_synrecv's)
    } else throw new Error(`global ${name}: neither cfg_enable_<knob>, cfg_size_<size>, cfg_key_<key><word> nor *_abi_version; teach scripts/gen-abi.mjs what it is`);
    globals.push(g);
  }
  const presets = {};
  for (const [k, v] of Object.entries(constants)) {
    const p = k.match(/^LVS_([A-Z]+)_(MAX_\w+)$/);
    if (p && p[1] !== 'DEFAULT' && maps.some((x) => x.size?.param === camel(p[2]))) {
      (presets[p[1].toLowerCase()] ??= {})[camel(p[2])] = v;
    }
  }
  const anchor = text.match(/struct (\w+_abi_anchor) \{([^}]*)\};/);
  if (!anchor) throw new Error('no *_abi_anchor struct: the ABI types would not be in BTF');
  const structs = [...anchor[2].matchAll(/^\s*struct (\w+) \w+;/gm)].map((x) => x[1]);
  const enums = [...anchor[2].matchAll(/^\s*enum (\w+) \w+;/gm)].map((x) => x[1]);
  return { maps, globals, presets, structs, enums };
}

/** The XDP program's name: the one `SEC("xdp") int <name>(` in the source. */
export function parseProgram(text) {
  const all = [...text.matchAll(/SEC\("xdp[^"]*"\)\s*int\s+(\w+)\s*\(/g)].map((m) => m[1]);
  if (all.length !== 1) throw new Error(`expected one XDP program, found ${all.length}`);
  return all[0];
}

/** TypeScript literal: short objects and arrays on one line, longer ones one entry a line. */
function json(v, indent = '') {
  const flat = (x) => (x !== null && typeof x === 'object'
    ? Array.isArray(x) ? `[${x.map(flat).join(', ')}]` : `{ ${Object.entries(x).map(([k, y]) => `${k}: ${flat(y)}`).join(', ')} }`
    : JSON.stringify(x));
  const one = flat(v);
  if (v === null || typeof v !== 'object' || one.length + indent.length <= 100) return one;
  const inner = `${indent}  `;
  if (Array.isArray(v)) return `[\n${v.map((x) => `${inner}${json(x, inner)},`).join('\n')}\n${indent}]`;
  return `{\n${Object.entries(v).map(([k, y]) => `${inner}${k}: ${json(y, inner)},`).join('\n')}\n${indent}}`;
}

function skeletonOf(object, program, maps, globals, version, structs, enums) {
  return { object, program, version, maps, globals, structs, enums };
}

/** TypeScript of the director's skeleton (src/abi/generated.ts). */
export function directorSource(abiText, mapsText, programText) {
  const { constants, counters } = parseAbiHeader(abiText);
  const states = parseXList(abiText, 'LVS_CONN_STATE_LIST', ['name', 'timeout', 'description']);
  // Enum constants join the #defines, so ABI.LVS_CS_* reads as before.
  for (const s of states) constants[`LVS_CS_${s.name}`] = s.index;
  constants.LVS_CS_MAX = states.length;
  const h = parseMapsHeader(mapsText, { ...constants, ...parseConstants(mapsText), LVS_C_MAX: counters.length });
  const sizeParams = [...new Set(h.maps.filter((m) => m.size).map((m) => m.size.param))];
  const defaults = Object.fromEntries(sizeParams.map((p) => [p, h.maps.find((m) => m.size?.param === p && m.size.factor === 1).maxEntries]));
  const knobs = h.globals.filter((g) => g.role === 'knob');
  const version = h.globals.find((g) => g.role === 'version');
  if (!version) throw new Error('lvs_maps.h: no cfg_abi_version global');
  for (const g of h.globals) if (g.role === 'size' && !sizeParams.includes(g.param)) throw new Error(`global ${g.name}: no map is sized by ${g.param}`);
  const enums = [
    { name: 'lvs_counter', prefix: 'LVS_C_', label: 'counter', values: counters.map((c) => c.name), max: 'LVS_C_MAX' },
    { name: 'lvs_conn_state', prefix: 'LVS_CS_', label: 'connection state', values: states.map((s) => s.name), max: 'LVS_CS_MAX' },
  ];
  for (const e of h.enums) if (!enums.some((x) => x.name === e)) throw new Error(`enum ${e} in the anchor: no list generates it`);
  const skel = skeletonOf('lvs_director.o', parseProgram(programText), h.maps, h.globals,
    { global: version.name, value: version.default }, h.structs, enums);
  const iface = (name, fields) => `export interface ${name} {\n${fields.map((f) => `  ${f};`).join('\n')}\n}`;
  const presetName = (p) => (p === 'small' ? 'SMALL_BOX_SIZES' : `${p.toUpperCase()}_SIZES`);
  return `// Generated by scripts/gen-abi.mjs from bpf/lvs_abi.h and bpf/lvs_maps.h. Do not edit.
import type { Skeleton } from './skeleton.js';

export const ABI = ${json(constants)} as const;

/** This build's LVS_ABI_VERSION: the value of cfg_abi_version in the object it loads. */
export const ABI_VERSION = ${constants.LVS_ABI_VERSION};

export type CounterKind = 'pass' | 'fwd' | 'event' | 'drop' | 'tx';
export interface CounterDef { index: number; name: string; kind: CounterKind; description: string }

/** lvs_counters map indexes, in enum lvs_counter order. */
export const COUNTERS: readonly CounterDef[] = ${json(counters)};

/** Connection states (enum lvs_conn_state): value = index; timeout names lvs_cfg.timeout_s[value]. */
export const CONN_STATES = ${json(states.map((s) => ({ value: s.index, name: s.name, timeout: s.timeout === 'none' ? null : s.timeout, description: s.description })))} as const;

/** State names by value: STATE_NAMES[lvs_conn.state]. */
export const STATE_NAMES = ${json(states.map((s) => s.name))} as const;
export type ConnStateName = (typeof STATE_NAMES)[number];

/** lvs_cfg.timeout_s order: entry i is the timeout setting of state i (null: never stored, 0). */
export const TIMEOUT_STATES = ${json(states.map((s) => (s.timeout === 'none' ? null : s.timeout)))} as const;
export type TimeoutName = Exclude<(typeof TIMEOUT_STATES)[number], null>;

/** The maps the control plane pins and uses (private maps excluded), in pinning order. */
export const DIRECTOR_MAPS = ${json(h.maps.filter((m) => !m.private).map((m) => m.name))} as const;
export type DirectorMap = (typeof DIRECTOR_MAPS)[number];

/** Load-time sizes (LVS_DEFAULT_MAX_* in bpf/lvs_maps.h). Memory cost: the README's "Sizes and memory cost". */
${iface('DirectorSizes', sizeParams.map((p) => `${p}: number`))}

export const DEFAULT_SIZES: DirectorSizes = ${json(defaults)};
${Object.entries(h.presets).map(([p, v]) => `/** LVS_${p.toUpperCase()}_MAX_* in bpf/lvs_maps.h. */\nexport const ${presetName(p)}: DirectorSizes = ${json(v)};`).join('\n')}

/** Load-time knobs (cfg_enable_* in bpf/lvs_maps.h): true = on. */
${iface('Knobs', knobs.map((k) => `/** When off: ${k.description} */\n  ${k.knob}: boolean`))}

export const DEFAULT_KNOBS: Knobs = ${json(Object.fromEntries(knobs.map((k) => [k.knob, k.default !== 0])))};

/** What bpf/lvs_director.o must hold: checked against its BTF at every load (src/abi/skeleton.ts). */
export const DIRECTOR_SKELETON: Skeleton = ${json(skel)};
`;
}

/** TypeScript of the decapsulator's skeleton (src/abi/decap-generated.ts). */
export function decapSource(decapText, mapsText, programText) {
  const decap = parseAbiHeader(decapText, 'LVS_DECAP_COUNTER_LIST');
  const h = parseMapsHeader(mapsText, { ...decap.constants, ...parseConstants(mapsText), LVS_DC_MAX: decap.counters.length });
  const version = h.globals.find((g) => g.role === 'version');
  if (!version) throw new Error('lvs_decap_maps.h: no cfg_decap_abi_version global');
  const enums = [{ name: 'lvs_decap_counter', prefix: 'LVS_DC_', label: 'decap counter', values: decap.counters.map((c) => c.name), max: 'LVS_DC_MAX' }];
  const skel = skeletonOf('lvs_decap.o', parseProgram(programText), h.maps, h.globals,
    { global: version.name, value: version.default }, h.structs, enums);
  return { counters: decap.counters, source: `// Generated by scripts/gen-abi.mjs from bpf/lvs_decap.h and bpf/lvs_decap_maps.h. Do not edit.
import type { Skeleton } from './skeleton.js';

export const DECAP_ABI = ${json(decap.constants)} as const;

/** This build's LVS_DECAP_ABI_VERSION. */
export const DECAP_ABI_VERSION = ${decap.constants.LVS_DECAP_ABI_VERSION};

export type DecapCounterKind = 'decap' | 'pass' | 'event' | 'drop';
export interface DecapCounterDef { index: number; name: string; kind: DecapCounterKind; description: string }

/** lvs_decap_counters map indexes, in enum lvs_decap_counter order. */
export const DECAP_COUNTERS: readonly DecapCounterDef[] = ${json(decap.counters)};

/** The decapsulator's maps, by name. */
export const DECAP_MAP_NAMES = ${json(h.maps.map((m) => m.name))} as const;

/** What bpf/lvs_decap.o must hold: checked against its BTF at every load (src/abi/skeleton.ts). */
export const DECAP_SKELETON: Skeleton = ${json(skel)};
` };
}

function writeIfChanged(path, text) {
  if (!existsSync(path) || readFileSync(path, 'utf8') !== text) writeFileSync(path, text);
}

function refreshReadme(marker, table) {
  const readme = join(root, 'README.md');
  if (!existsSync(readme)) return;
  const text = readFileSync(readme, 'utf8');
  const next = text.replace(new RegExp(`(<!-- ${marker}:begin -->\\n)[\\s\\S]*?(<!-- ${marker}:end -->)`), `$1${table}\n$2`);
  if (next !== text) writeFileSync(readme, next);
}

const counterTable = (counters) => ['| counter | kind | meaning |', '| --- | --- | --- |',
  ...counters.map((c) => `| \`${c.name.toLowerCase()}\` | ${c.kind} | ${c.description} |`)].join('\n');

function main() {
  const read = (p) => readFileSync(join(root, p), 'utf8');
  const abiText = read('bpf/lvs_abi.h');
  const mapsText = read('bpf/lvs_maps.h');
  writeIfChanged(join(root, 'src/abi/generated.ts'), directorSource(abiText, mapsText, read('bpf/lvs_director.bpf.c')));
  const { constants, counters } = parseAbiHeader(abiText);
  refreshReadme('counters', counterTable(counters));
  const knobs = parseMapsHeader(mapsText, { ...constants, ...parseConstants(mapsText), LVS_C_MAX: counters.length })
    .globals.filter((g) => g.role === 'knob');
  refreshReadme('knobs', ['| knob | default | effect when 0 |', '| --- | --- | --- |',
    ...knobs.map((k) => `| \`${k.name}\` | ${k.default} | ${k.description} |`)].join('\n'));

  const decap = decapSource(read('bpf/lvs_decap.h'), read('bpf/lvs_decap_maps.h'), read('bpf/lvs_decap.bpf.c'));
  writeIfChanged(join(root, 'src/abi/decap-generated.ts'), decap.source);
  refreshReadme('decap-counters', counterTable(decap.counters));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
