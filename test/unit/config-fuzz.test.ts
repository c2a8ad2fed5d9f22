// Config fuzzing: random and mutated YAML / JSON files and ipvsadm rule files either parse into a
// valid configuration or are rejected with a ConfigError that names the file and where in it;
// never another exception (a stack trace for the operator). Seeds are fixed so a failure repeats.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parse as yamlParse } from 'yaml';
import { parseConfigText } from '../../src/config/index.js';
import { parseRules, applyCommands } from '../../src/ipvsadm/index.js';
import { validateConfig } from '../../src/model/validate.js';
import { emptyConfig } from '../../src/model/types.js';
import { ConfigError } from '../../src/errors.js';

const YAML = `settings:
  tunnel: { source4: 192.168.1.1, source6: "2001:db8:1::1", mtu: 1500, ttl: 64 }
  hash-seed: 7
  timeouts: { tcp: 900, tcp-fin: 120, udp: 300 }
services:
  - vip: 10.0.0.1
    port: 80
    protocol: tcp
    scheduler: mh
    flags: [mh-port]
    table-size: 251
    realservers:
      - { address: 192.168.1.10, weight: 1, method: dr, mac: "02:00:00:00:00:0a" }
      - { address: 192.168.2.20, weight: 0, method: tun }
  - vip: "2001:db8::1"
    port: 53
    protocol: udp
    scheduler: sh
    ops: true
    persistence: { timeout: 300, netmask: 64 }
    realservers:
      - { address: "2001:db8:1::10", method: dr }
`;
const RULES = `-A -t 10.0.0.1:80 -s mh -b mh-port
-a -t 10.0.0.1:80 -r 192.168.1.10:80 -g -w 1 --mac 02:00:00:00:00:0a
-a -t 10.0.0.1:80 -r 192.168.2.20:80 -i -w 2
-A -u [2001:db8::1]:53 -s sh -p 300 -M 64 -o -b sh-port
-a -u [2001:db8::1]:53 -r [2001:db8:1::10]:53 -g -w 1
`;

/** Mutations an operator's editor or a broken pipe could make: edits at random positions. */
function mutate(text: string, ops: { pos: number; kind: number; ch: string; len: number }[]): string {
  let s = text;
  for (const op of ops) {
    const p = op.pos % (s.length + 1);
    switch (op.kind % 5) {
      case 0: s = s.slice(0, p) + op.ch + s.slice(p); break; // insert
      case 1: s = s.slice(0, p) + s.slice(p + op.len); break; // delete
      case 2: s = s.slice(0, p) + op.ch + s.slice(p + 1); break; // replace
      case 3: s = s.slice(0, p) + s.slice(p, p + op.len) + s.slice(p, p + op.len) + s.slice(p); break; // duplicate
      default: s = s.slice(0, p); // truncate
    }
  }
  return s;
}

const edit = fc.record({
  pos: fc.nat(2000), kind: fc.nat(4), len: fc.integer({ min: 1, max: 12 }),
  ch: fc.constantFrom(...' \t\n:-,[]{}"\'#&*!|>%@`0123456789aAzZ.'.split(''), '\u0000', '\u00e9', '65536', '-1', '::', 'null', 'true'),
});

function acceptOrConfigError(fn: () => unknown, file: string): void {
  try {
    const cfg = fn() as ReturnType<typeof emptyConfig>;
    validateConfig(cfg); // whatever was accepted is a valid configuration
  } catch (e) {
    if (!(e instanceof ConfigError)) throw new Error(`not a ConfigError: ${(e as Error)?.stack ?? String(e)}`);
    assert.ok(e.message.includes(file), `error does not name the file: ${e.message}`);
    assert.ok(!/\n\s+at /.test(e.message), 'stack trace in the message');
  }
}

test('mutated YAML files: parsed, or a ConfigError naming file and line', () => {
  fc.assert(fc.property(fc.array(edit, { minLength: 1, maxLength: 6 }), (ops) => {
    acceptOrConfigError(() => parseConfigText(mutate(YAML, ops), 'director.yaml'), 'director.yaml');
  }), { numRuns: 3000, seed: 4242 });
});

test('mutated JSON files: parsed, or a ConfigError naming the file', () => {
  const json = JSON.stringify(yamlParse(YAML), null, 1);
  fc.assert(fc.property(fc.array(edit, { minLength: 1, maxLength: 6 }), (ops) => {
    acceptOrConfigError(() => parseConfigText(mutate(json, ops), 'director.json'), 'director.json');
  }), { numRuns: 2000, seed: 4243 });
});

test('random documents of random JSON values: parsed, or a ConfigError', () => {
  fc.assert(fc.property(fc.jsonValue({ maxDepth: 4 }), (v) => {
    acceptOrConfigError(() => parseConfigText(JSON.stringify(v), 'random.json'), 'random.json');
  }), { numRuns: 2000, seed: 4244 });
});

test('mutated ipvsadm rule files: applied, or a ConfigError naming <file>:<line>', () => {
  fc.assert(fc.property(fc.array(edit, { minLength: 1, maxLength: 6 }), (ops) => {
    acceptOrConfigError(() => applyCommands(emptyConfig(), parseRules(mutate(RULES, ops), 'rules.txt')), 'rules.txt');
  }), { numRuns: 3000, seed: 4245 });
});

test('random rule lines of ipvsadm words: applied, or a ConfigError', () => {
  const word = fc.constantFrom('-A', '-E', '-D', '-C', '-a', '-e', '-d', '-t', '-u', '-s', '-p', '-M', '-o', '-b', '-r', '-g', '-i', '-m', '-w',
    '--mac', '10.0.0.1:80', '[2001:db8::1]:53', '192.168.1.10', 'mh', 'sh', 'wlc', '300', '255.255.255.0', '64', 'sh-port', '02:00:00:00:00:01', '7', '-1', 'x');
  fc.assert(fc.property(fc.array(fc.array(word, { maxLength: 10 }), { maxLength: 8 }), (lines) => {
    const text = lines.map((l) => l.join(' ')).join('\n');
    acceptOrConfigError(() => applyCommands(emptyConfig(), parseRules(text, 'rules.txt')), 'rules.txt');
  }), { numRuns: 3000, seed: 4246 });
});

