/** Config file: good files, one test per class of bad input (location + field), fuzzing. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { formatConfigYaml, parseConfigText } from '../../src/config/index.js';
import { ConfigError } from '../../src/model/config-error.js';
import { formatSave } from '../../src/ipvsadm/format.js';

const dir = fileURLToPath(new URL('../../../test/fixtures/config/', import.meta.url));
const fixture = (name: string): string => readFileSync(join(dir, name), 'utf8');

test('good.yaml: defaults, canonical forms, settings, opaque health checks', () => {
  const cfg = parseConfigText(fixture('good.yaml'), 'good.yaml');
  assert.equal(cfg.services.length, 2);
  const [web, dns] = cfg.services as [NonNullable<typeof cfg.services[0]>, NonNullable<typeof cfg.services[0]>];
  assert.equal(web.tableSize, 65537);
  assert.deepEqual(web.healthCheck, { type: 'http', path: '/healthz', interval: '2s' });
  assert.equal(web.realservers[0]!.mac, '02:00:00:00:00:0a');
  assert.deepEqual(web.realservers[2], {
    address: '2001:db8::20', port: 80, weight: 0, method: 'tun', nextHop: '2001:db8::fffe', ifname: 'eth1',
    healthCheck: { type: 'tcp', port: 80 },
  });
  assert.equal(dns.vip, '2001:db8::1');
  assert.deepEqual(dns.flags, ['sh-fallback', 'sh-port']);
  assert.deepEqual(dns.persistence, { timeout: 600, netmask: '128' });
  assert.deepEqual(dns.realservers[0], { address: '2001:db8::10', port: 53, weight: 1, method: 'dr' });
  assert.deepEqual(cfg.settings, {
    tunnel: { source4: '10.0.0.5', source6: '2001:db8::5', mtu: 1500 }, hashSeed: 12345,
    timeouts: { tcp: 900, tcpFin: 120, udp: 300 },
  });
  assert.equal(formatSave(cfg), fixture('good.save'));
});

test('good.json reads as JSON, with the same model rules', () => {
  const cfg = parseConfigText(fixture('good.json'), 'good.json');
  assert.deepEqual(cfg.services[0]!.persistence, { timeout: 300, netmask: '255.255.255.0' });
  assert.equal(cfg.services[0]!.protocol, 'tcp');
  assert.equal(cfg.services[0]!.scheduler, 'wrr');
  assert.equal(cfg.services[0]!.realservers[1]!.port, 0);
  // Unnamed input that looks like JSON is JSON too. Removing every service takes `services: []`:
  // an empty, truncated or settings-only file is refused, never read as "no services".
  assert.deepEqual(parseConfigText('{"services": []}', '-'), { services: [] });
  assert.throws(() => parseConfigText('', 'empty.yaml'), /^ConfigError: empty\.yaml:1:1: the file is empty; a configuration lists its services/);
  assert.throws(() => parseConfigText('# only a comment\n', 'c.yaml'), /c\.yaml:1:1: the file is empty/);
  assert.throws(() => parseConfigText('settings:\n  hash-seed: 3\n', 's.yaml'), /s\.yaml:1:1: services: missing \(expected a list\)/);
  assert.throws(() => parseConfigText('{"settings": {}}', 's.json'), /s\.json:1:1: services: missing/);
});

test('formatConfigYaml reads back to the same config', () => {
  for (const name of ['good.yaml', 'good.json']) {
    const cfg = parseConfigText(fixture(name), name);
    const yaml = formatConfigYaml(cfg);
    assert.deepEqual(parseConfigText(yaml, 'out.yaml'), cfg);
  }
  assert.equal(formatConfigYaml(parseConfigText(fixture('good.json'), 'good.json')), fixture('good.formatted.yaml'));
});

function rejects(text: string, message: string, filename = 'd.yaml'): void {
  assert.throws(() => parseConfigText(text, filename), (e: unknown) => {
    assert.ok(e instanceof ConfigError, String(e));
    assert.equal(e.message, message);
    return true;
  });
}

const svc = (extra: string, rs = '      - { address: 192.168.1.10 }\n') =>
  `services:\n  - vip: 10.0.0.1\n    port: 80\n${extra}    realservers:\n${rs}`;

test('YAML and JSON syntax errors carry file:line:col', () => {
  rejects('services: [1', 'd.yaml:1:13: Flow sequence in block collection must be sufficiently indented and end with a ]');
  rejects('services:\n  - vip: 10.0.0.1\n    vip: 10.0.0.2\n    port: 80\n', 'd.yaml:3:5: Map keys must be unique');
  rejects('{\n  "services": [\n    {"vip": "10.0.0.1" "port": 80}\n  ]\n}', 'd.json:3:24: Unexpected double-quoted-scalar token', 'd.json');
  // JSON files are read with YAML's JSON schema: unquoted strings are refused.
  rejects('{"services": [{"vip": 10.0.0.1, "port": 80}]}', 'd.json:1:23: Unresolved plain scalar "10.0.0.1"', 'd.json');
});

test('unknown fields point at the key', () => {
  rejects('services:\n  - vip: 10.0.0.1\n    prot: 80\n', 'd.yaml:3:5: services[0].prot: unknown field "prot"');
  rejects(svc('', '      - { address: 192.168.1.10, wieght: 2 }\n'), 'd.yaml:5:34: services[0].realservers[0].wieght: unknown field "wieght"');
  rejects('setings: {}\n', 'd.yaml:1:1: setings: unknown field "setings"');
  rejects('settings:\n  tunnel: { source: 10.0.0.5 }\n', 'd.yaml:2:13: settings.tunnel.source: unknown field "source"');
});

test('wrong types and missing fields point at the value or its parent', () => {
  rejects(svc('', '      - { address: 192.168.1.10, weight: "2" }\n'), 'd.yaml:5:42: services[0].realservers[0].weight: expected an integer, got the string "2"');
  rejects(svc('', '      - { address: 192.168.1.10, weight: 1.5 }\n'), 'd.yaml:5:42: services[0].realservers[0].weight: expected an integer, got the number 1.5 (not an integer)');
  rejects('services:\n  - port: 80\n', 'd.yaml:2:5: services[0].vip: missing (expected a string)');
  rejects(svc('    ops: yes\n'), 'd.yaml:4:10: services[0].ops: expected true or false, got the string "yes"');
  rejects('services: {}\n', 'd.yaml:1:11: services: expected a list, got a mapping');
  rejects('- 1\n', 'd.yaml:1:1: expected a mapping, got a list');
  rejects(svc('    persistence: [300]\n'), 'd.yaml:4:18: services[0].persistence: unexpected a list');
});

test('model rules report the file location and the file\'s field names', () => {
  rejects(svc('', '      - { address: 192.168.1.10, weight: 70000 }\n'),
    'd.yaml:5:42: services[0].realservers[0].weight: service tcp 10.0.0.1:80, realserver 192.168.1.10: weight 70000 out of range 0..65535');
  rejects(svc('    table-size: 1000\n'), 'd.yaml:4:17: services[0].table-size: service tcp 10.0.0.1:80: table size 1000 is not one of 251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 65537, 131071');
  rejects(svc('    scheduler: lblc\n'), 'd.yaml:4:16: services[0].scheduler: service tcp 10.0.0.1:80: scheduler lblc is not supported by the XDP data plane: it keeps a cache of destination address -> realserver and moves an address when its realserver has more connections than its weight while some other has fewer than half of its own: a search over every realserver that the data plane does not make per packet (dh keeps destination locality, wlc balances by connections) (supported: mh, sh, dh, rr, wrr, lc, wlc, sed, nq, twos, fo, ovf)');
  rejects(svc('', '      - { address: 192.168.1.10, upper-threshold: 5, lower-threshold: 6 }\n'), 'd.yaml:5:71: services[0].realservers[0].lower-threshold: service tcp 10.0.0.1:80, realserver 192.168.1.10: lower threshold 6 is above the upper threshold 5');
  rejects(svc('', '      - { address: 192.168.1.10, method: masq }\n'),
    'd.yaml:5:42: services[0].realservers[0].method: service tcp 10.0.0.1:80, realserver 192.168.1.10: unknown forwarding method "masq" (use dr, tun or nat)');
  rejects(svc('', '      - { address: "2001:db8::1", method: nat }\n'),
    'd.yaml:5:20: services[0].realservers[0].address: service tcp 10.0.0.1:80, realserver 2001:db8::1: LVS-NAT cannot translate an IPv4 VIP to an IPv6 realserver');
  rejects(svc('', '      - { address: "2001:db8::1" }\n'),
    'd.yaml:5:20: services[0].realservers[0].address: service tcp 10.0.0.1:80, realserver 2001:db8::1: LVS-DR cannot forward an IPv4 VIP to an IPv6 realserver (only Tun may mix families)');
  rejects(svc('', '      - { address: 192.168.1.10, port: 8080 }\n'),
    'd.yaml:5:40: services[0].realservers[0].port: service tcp 10.0.0.1:80, realserver 192.168.1.10: port 8080 differs from the service port 80; DR and Tun forward to the service port and cannot change it');
  rejects(svc('', '      - { address: 192.168.1.10, next-hop: 192.168.1.1 }\n'),
    'd.yaml:5:44: services[0].realservers[0].next-hop: service tcp 10.0.0.1:80, realserver 192.168.1.10: a next hop applies only to Tun realservers (DR realservers share the director\'s link)');
  rejects(svc('    persistence: { timeout: 60, netmask: 255.0.255.0 }\n'),
    'd.yaml:4:18: services[0].persistence: service tcp 10.0.0.1:80: netmask: netmask 255.0.255.0 is not contiguous');
  rejects(`${svc('')}  - vip: 10.0.0.1\n    port: 80\n`, 'd.yaml:6:5: services[1]: service tcp 10.0.0.1:80: duplicate service (also services[0])');
  rejects(svc('', '      - { address: 192.168.1.10 }\n      - { address: 192.168.1.10 }\n'),
    'd.yaml:6:20: services[0].realservers[1].address: service tcp 10.0.0.1:80, realserver 192.168.1.10: duplicate realserver (also realservers[0])');
  rejects('services: []\nsettings:\n  tunnel: { source4: "2001:db8::5" }\n', 'd.yaml:3:22: settings.tunnel.source4: tunnel: "2001:db8::5" is not an IPv4 address');
  rejects('services:\n  - vip: www.example.com\n    port: 80\n', 'd.yaml:2:10: services[0].vip: service tcp www.example.com:80: "www.example.com" is not an IPv4 or IPv6 address (names are not resolved)');
});

test('several problems are all listed, each with its location', () => {
  assert.throws(() => parseConfigText(svc('', '      - { address: 192.168.1.10, weight: -1 }\n      - { address: 192.168.1.11, weight: 99999 }\n'), 'd.yaml'),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.location, 'd.yaml:5:42');
      assert.equal(e.field, 'services[0].realservers[0].weight');
      assert.match(e.message, /\nd\.yaml:6:42: services\[0\]\.realservers\[1\]\.weight: .*weight 99999 out of range/);
      return true;
    });
});

test('limits are applied', () => {
  assert.throws(() => parseConfigText(svc(''), 'd.yaml', { maxRealservers: 0 }), /1 realservers in total exceed the limit of 0/);
});

function onlyConfigErrors(text: string, name: string): void {
  try {
    parseConfigText(text, name);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    assert.ok(!/\n\s+at /.test(e.message), 'no stack trace in messages');
    assert.match(e.message, new RegExp(`^${name.replace('.', '\\.')}:\\d+:\\d+: `));
  }
}

test('fuzz: random text, random JSON/YAML values and mutated files only ever raise ConfigError', () => {
  const good = fixture('good.yaml');
  fc.assert(fc.property(fc.string({ maxLength: 200 }), (t) => onlyConfigErrors(t, 'f.yaml')), { numRuns: 300 });
  fc.assert(fc.property(fc.jsonValue(), (v) => {
    onlyConfigErrors(JSON.stringify(v) ?? 'null', 'f.json');
    onlyConfigErrors(stringify({ services: [v] }), 'f.yaml');
    onlyConfigErrors(stringify({ settings: v, services: v }), 'f.yaml');
  }), { numRuns: 300 });
  const mutation = fc.tuple(fc.nat({ max: good.length }), fc.nat({ max: 20 }), fc.string({ maxLength: 8 }));
  fc.assert(fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (edits) => {
    let t = good;
    for (const [at, del, ins] of edits) t = t.slice(0, at) + ins + t.slice(at + del);
    onlyConfigErrors(t, 'f.yaml');
  }), { numRuns: 500 });
  // Hostile YAML: aliases, tags, merge keys, odd keys.
  for (const t of ['a: &x [*x]', 'services: !!binary aGVsbG8=', '<<: {services: []}', '__proto__: {services: 1}',
    'services:\n  - ? [a]\n    : 1', '&a [*a, *a, *a]', 'services: !!set {a, b}', '%YAML 1.1\n---\nservices: []', '--- 1\n--- 2']) {
    onlyConfigErrors(t, 'h.yaml');
  }
});

test('settings expire-nodest-conn / expire-quiescent-template (IPVS sysctls): parsed, written back, only booleans', () => {
  const text = 'settings:\n  expire-nodest-conn: true\n  expire-quiescent-template: false\nservices: []\n';
  const cfg = parseConfigText(text, 'x.yaml');
  assert.deepEqual(cfg.settings, { expireNodestConn: true, expireQuiescentTemplate: false });
  const back = formatConfigYaml(cfg);
  assert.match(back, /expire-nodest-conn: true/);
  assert.match(back, /expire-quiescent-template: false/);
  assert.deepEqual(parseConfigText(back, 'back.yaml').settings, cfg.settings);
  assert.throws(() => parseConfigText('settings:\n  expire-nodest-conn: 1\nservices: []\n', 'b.yaml'), /b\.yaml:2:\d+: settings\.expire-nodest-conn/);
});
