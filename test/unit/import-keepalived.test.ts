/**
 * `lvs-xdp import keepalived`: the parser (quotes, comments, blocks, includes, conditionals,
 * parameters, errors with file:line), every sample configuration Debian's keepalived package ships
 * (/usr/share/doc/keepalived/samples/, installed by scripts/setup-test.sh) and a realistic DR
 * configuration of our own (test/fixtures/keepalived/dr/), with concrete translated values. Every
 * output is read back the way `apply` / `run` read files (parseConfigText + healthPlan).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigText } from '../../src/config/index.js';
import { healthPlan } from '../../src/ops/spec.js';
import { serviceId } from '../../src/model/types.js';
import { ConfigError } from '../../src/errors.js';
import {
  importKeepalived, parseKeepalived, tokenizeLine, FWMARK_NAT_REASON, SORRY_NAT_REASON, KeepalivedSyntaxError, type ParseHooks, type Statement,
} from '../../src/import/keepalived/index.js';
import { expandRange, hexText, splitScript } from '../../src/import/keepalived/translate.js';
import { repoRoot } from '../lib/paths.js';

const SAMPLES = '/usr/share/doc/keepalived/samples';
const FIXTURE = join(repoRoot(), 'test/fixtures/keepalived/dr/keepalived.conf');
const NAT_FIXTURE = join(repoRoot(), 'test/fixtures/keepalived/nat/keepalived.conf');

/** An in-memory file system for the parser's hooks. */
function memfs(files: Record<string, string>, configId = 'lb1'): ParseHooks {
  return {
    read: (p) => files[p],
    list: (d) => {
      const pre = d.endsWith('/') ? d : `${d}/`;
      const names = Object.keys(files).filter((f) => f.startsWith(pre)).map((f) => f.slice(pre.length).split('/')[0]!);
      return names.length ? [...new Set(names)] : undefined;
    },
    configId,
  };
}

function syntaxError(fn: () => unknown, where: string, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof KeepalivedSyntaxError, String(e));
    assert.equal(`${e.file}:${e.line}`, where);
    assert.match(e.message, re);
    return true;
  });
}

const brief = (s: Statement): unknown => ({ k: s.keyword, a: s.args, ...(s.block ? { b: s.block.map(brief) } : {}), at: `${s.file}:${s.line}` });

test('parser: words, quotes with escapes, comments # and ! anywhere outside quotes', () => {
  assert.deepEqual(tokenizeLine('  misc_path "/bin/x a  b" \'c d\' # comment', 'f', 1).map((t) => t.text), ['misc_path', '/bin/x a  b', 'c d']);
  assert.deepEqual(tokenizeLine('path /a!b', 'f', 1).map((t) => t.text), ['path', '/a']);
  assert.deepEqual(tokenizeLine('x "a#b!c" ! rest', 'f', 1).map((t) => t.text), ['x', 'a#b!c']);
  assert.deepEqual(tokenizeLine('x "tab\\there \\"q\\" \\x41\\101"', 'f', 1).map((t) => t.text), ['x', 'tab\there "q" AA']);
  assert.deepEqual(tokenizeLine('abcd" efg h "mnop', 'f', 1).map((t) => t.text), ['abcd efg h mnop']);
  syntaxError(() => tokenizeLine('x "open', 'k.conf', 7), 'k.conf:7', /unterminated double quote/);
});

test('parser: blocks on one line, on the next line, nested; file:line of each statement', () => {
  const r = parseKeepalived('/k.conf', memfs({
    '/k.conf': 'virtual_server 10.0.0.1 80\n{\n  real_server 10.0.0.2 80 { weight 2 }\n  HTTP_GET { url { path / } }\n}\n',
  }));
  assert.deepEqual(r.statements.map(brief), [{
    k: 'virtual_server', a: ['10.0.0.1', '80'], at: '/k.conf:1', b: [
      { k: 'real_server', a: ['10.0.0.2', '80'], at: '/k.conf:3', b: [{ k: 'weight', a: ['2'], at: '/k.conf:3' }] },
      { k: 'HTTP_GET', a: [], at: '/k.conf:4', b: [{ k: 'url', a: [], at: '/k.conf:4', b: [{ k: 'path', a: ['/'], at: '/k.conf:4' }] }] },
    ],
  }]);
});

test('parser: errors name file and line (unclosed block, stray brace, include loop)', () => {
  syntaxError(() => parseKeepalived('/k.conf', memfs({ '/k.conf': 'a {\n  b {\n  }\n' })), '/k.conf:1', /block a is never closed/);
  syntaxError(() => parseKeepalived('/k.conf', memfs({ '/k.conf': 'a {\n}\n}\n' })), '/k.conf:3', /unexpected }/);
  syntaxError(() => parseKeepalived('/k.conf', memfs({ '/k.conf': '\n{\n' })), '/k.conf:2', /unexpected \{/);
  syntaxError(() => parseKeepalived('/etc/k.conf', memfs({ '/etc/k.conf': 'x 1\ninclude sub/a.conf\n', '/etc/sub/a.conf': 'include ../k.conf\n' })),
    '/etc/sub/a.conf:1', /includes itself \(\/etc\/k\.conf -> \/etc\/sub\/a\.conf -> \/etc\/k\.conf\)/);
  // ... and the import turns them into a ConfigError (exit 2) with the same place.
  assert.throws(() => importKeepalived('/k.conf', {}, memfs({ '/k.conf': 'virtual_server 10.0.0.1 80 {\n' })),
    (e: unknown) => e instanceof ConfigError && /^\/k\.conf:1: block virtual_server is never closed/.test(e.message));
});

test('parser: include with wildcards and braces, relative to the including file; a missing one is a note', () => {
  const r = parseKeepalived('/etc/keepalived/keepalived.conf', memfs({
    '/etc/keepalived/keepalived.conf': 'a 1\ninclude conf.d/*.conf\nb 2\ninclude {x,y}.inc\ninclude missing/*.conf\n',
    '/etc/keepalived/conf.d/20-web.conf': 'web 20\ninclude ../y.inc\n',
    '/etc/keepalived/conf.d/10-dns.conf': 'dns 10\n',
    '/etc/keepalived/conf.d/README': 'not included\n',
    '/etc/keepalived/x.inc': 'x 0\n',
    '/etc/keepalived/y.inc': 'y 0\n',
  }));
  assert.deepEqual(r.statements.map((s) => `${s.keyword}@${s.file.replace('/etc/keepalived/', '')}:${s.line}`),
    ['a@keepalived.conf:1', 'dns@conf.d/10-dns.conf:1', 'web@conf.d/20-web.conf:1', 'y@y.inc:1', 'b@keepalived.conf:3', 'x@x.inc:1', 'y@y.inc:1']);
  assert.deepEqual(r.notes, [{ file: '/etc/keepalived/keepalived.conf', line: 5, note: 'include missing/*.conf: no file matches (skipped, as keepalived does)' }]);
});

test('parser: conditional lines (@id, @^id) and parameters ($NAME, ${NAME}, multi-line)', () => {
  const text = '@lb1 a one\n@lb2 a two\n@^lb2 b yes\n$PORT=80\n$BASE=10.0.${SUB}\n$SUB=7\nvs ${BASE}.1 $PORT\n$BLK= \\\nr 1 \\\nr 2\n$BLK\n';
  const r = parseKeepalived('/k.conf', memfs({ '/k.conf': text }, 'lb1'));
  assert.deepEqual(r.statements.map((s) => [s.keyword, ...s.args].join(' ')), ['a one', 'b yes', 'vs 10.0.7.1 80', 'r 1', 'r 2']);
});

test('translator helpers: group ranges, HEX_STR payloads, script words', () => {
  assert.deepEqual(expandRange('192.168.200.3-6'), ['192.168.200.3', '192.168.200.4', '192.168.200.5', '192.168.200.6']);
  assert.deepEqual(expandRange('10.0.0.254-10.0.1.1'), ['10.0.0.254', '10.0.0.255', '10.0.1.0', '10.0.1.1']);
  assert.deepEqual(expandRange('192.168.202.8/30'), ['192.168.202.8', '192.168.202.9', '192.168.202.10', '192.168.202.11']);
  assert.deepEqual(expandRange('ae00::2-4'), ['ae00::2', 'ae00::3', 'ae00::4']);
  assert.match(String(expandRange('10.0.0.0/16')), /65536 addresses: more than 256/);
  assert.match(String(expandRange('10.0.0.9-3')), /runs backwards/);
  assert.equal(hexText('70696e67'), 'ping');
  assert.equal(hexText('6869 21'), 'hi!');
  assert.equal(hexText('48696'), undefined); // the last "6" alone is byte 06: a control byte, not text
  assert.equal(hexText('486 9'), undefined); // 48 06 09
  assert.equal(hexText('48 69 a'), 'Hi\n');
  assert.equal(hexText('zz'), undefined);
  assert.deepEqual(splitScript("/bin/n.sh up 'web pool'  x"), ['/bin/n.sh', 'up', 'web pool', 'x']);
});

/** Reads a generated configuration back as `apply` and `run` do. */
function readBack(text: string): ReturnType<typeof healthPlan> & { cfg: ReturnType<typeof parseConfigText> } {
  const cfg = parseConfigText(text, 'imported.yaml');
  return { ...healthPlan(cfg), cfg };
}

const samples = (): string[] => {
  assert.ok(existsSync(SAMPLES), `${SAMPLES} is missing: bash scripts/setup-test.sh installs keepalived`);
  return readdirSync(SAMPLES).filter((f) => f.startsWith('keepalived.conf')).sort();
};

test('every Debian sample: a valid configuration; LVS-NAT virtual servers as method nat without --nat-as, NAT fwmark ones reported, VRRP-only files say the list is empty', () => {
  const names = samples();
  assert.ok(names.length >= 20, `only ${names.length} samples`);
  let withVs = 0;
  let natServices = 0;
  for (const name of names) {
    const path = join(SAMPLES, name);
    const text = readFileSync(path, 'utf8');
    const vsLines = text.split('\n').map((l, i) => [l, i + 1] as const).filter(([l]) => /^\s*virtual_server\s/.test(l)).map(([, n]) => n);
    const r = importKeepalived(path, { configId: 'none' });
    const back = readBack(r.text);
    assert.equal(r.virtualServers, vsLines.length, name);
    if (vsLines.length === 0) {
      assert.equal(back.cfg.services.length, 0, name);
      assert.match(r.text, /no virtual service carried over \(the file has no virtual_server block\): an empty service list/, name);
      continue;
    }
    withVs++;
    // Every sample's virtual servers are LVS-NAT: VIP:port ones are carried over as they are,
    // firewall-mark ones (a virtual_server or group entries) are reported at their lb_kind line
    // (lvs-xdp has no LVS-NAT there); nothing else about NAT is.
    if (/^\s*(virtual_server\s+)?fwmark\s/m.test(text)) {
      assert.ok(r.items.some((i) => i.file === path && i.kind === 'dropped' && i.reason === FWMARK_NAT_REASON && /^\s*lb_kind NAT/.test(text.split('\n')[i.line - 1]!)), name);
    }
    if (/virtual_server fwmark/.test(text)) assert.equal(back.cfg.services.length, 0, name);
    else assert.ok(back.cfg.services.length >= 1, name);
    assert.ok(!r.items.some((i) => /lb_kind|NAT/.test(i.reason) && i.reason !== SORRY_NAT_REASON && i.reason !== FWMARK_NAT_REASON), `${name}: ${JSON.stringify(r.items)}`);
    for (const s of back.cfg.services) {
      natServices++;
      for (const rs of s.realservers) assert.equal(rs.method, 'nat', name);
    }
    // With --nat-as dr every virtual_server (the fwmark one too) becomes DR services that validate.
    const dr = importKeepalived(path, { natAs: 'dr', configId: 'none' });
    const drBack = readBack(dr.text);
    assert.ok(drBack.cfg.services.length >= 1, name);
    for (const s of drBack.cfg.services) for (const rs of s.realservers) assert.equal(rs.method, 'dr', name);
  }
  assert.ok(withVs >= 15, `${withVs} samples with virtual_server`);
  assert.ok(natServices >= 25, `${natServices} LVS-NAT services`);
});

test('samples: concrete values (NAT ports, status ranges, urls, digest, quorum, group, inhibit, misc_path, sorry server; fwmark with --nat-as dr)', () => {
  const load = (name: string, natAs?: 'dr') => {
    const r = importKeepalived(join(SAMPLES, name), { ...(natAs ? { natAs } : {}), configId: 'none' });
    return { r, ...readBack(r.text) };
  };
  const sc = load('keepalived.conf.status_code');
  const [t] = sc.targets;
  assert.equal(t!.spec.type, 'https');
  assert.deepEqual(t!.spec.urls, [
    { path: '/', expectStatus: [503, 505], expectStatusRanges: [[200, 299], [400, 499]] },
    { path: '/mrtg/', expectStatus: [200], digest: '9b3a0c85a887a256d6939da88aabd8cd' },
  ]);
  assert.deepEqual([t!.spec.intervalMs, t!.spec.timeoutMs, t!.spec.rise, t!.spec.fall, t!.spec.delayBeforeRetryMs, t!.spec.onDown, t!.spec.via], [6000, 3000, 1, 4, 3000, 'cut', 'direct']);
  assert.deepEqual(sc.cfg.services[0]!.persistence, { timeout: 50, netmask: '255.255.255.255' });
  assert.deepEqual(sc.cfg.services[0]!.realservers.map((x) => `${x.address}:${x.port}/${x.method}`), ['192.168.201.100:443/nat']);

  // LVS-NAT to another port: VIP 10.0.1.1:80 -> RIP:8080 (the check probes connect_port 80).
  const q = load('keepalived.conf.quorum');
  assert.deepEqual(q.policies.get('tcp 10.0.1.1:80')!.quorum, { quorum: 7, hysteresis: 2 });
  assert.deepEqual(q.policies.get('tcp 10.0.1.1:80')!.notify, { quorumUp: ['/usr/local/sbin/quorum-up.sh'], quorumDown: ['/usr/local/sbin/quorum-down.sh'] });
  assert.deepEqual(q.cfg.services[0]!.realservers.map((x) => `${x.address}:${x.port}/${x.method}/${x.weight}`),
    Array.from({ length: 10 }, (_x, i) => `10.0.0.${i + 1}:8080/nat/1`));
  assert.equal(q.targets.length, 10);
  assert.ok(q.targets.every((x) => x.spec.initial === 'down' && x.spec.port === 80 && x.spec.type === 'tcp' && x.spec.via === 'direct'));
  assert.equal(q.cfg.services[0]!.scheduler, 'wrr');
  assert.ok(q.r.items.some((i) => i.line === 30 && /omega/.test(i.item)));
  assert.equal(q.r.items.filter((i) => /port 8080/.test(i.reason)).length, 0);
  // ... and with --nat-as dr, the realserver port goes (reported once per realserver).
  assert.equal(load('keepalived.conf.quorum', 'dr').r.items.filter((i) => /port 8080: LVS-DR and LVS-Tun forward to the service port 80/.test(i.reason)).length, 10);

  const g = load('keepalived.conf.virtual_server_group');
  assert.deepEqual(g.cfg.services.map((s) => `${s.vip}:${s.port}`), [
    '10.0.0.1:8080', '10.0.0.2:80', '192.168.200.1:1358', ...[3, 4, 5, 6, 7, 8, 9, 10].map((n) => `192.168.200.${n}:80`),
  ]);
  assert.ok(g.cfg.services.every((s) => s.realservers.map((x) => `${x.address}:${x.port}/${x.method}`).join(' ') === '192.168.200.1:1358/nat 192.168.200.2:1358/nat'));
  assert.deepEqual(g.r.items.filter((i) => i.reason === FWMARK_NAT_REASON).map((i) => [i.line, i.item]), [[25, 'virtual_server group VSG_1: fwmark 1, fwmark 2']]);
  assert.equal(g.targets.find((x) => x.vip === '10.0.0.2')!.spec.port, 1358);
  // With --nat-as dr the group's fwmark entries are services too, each with its mark to define.
  const gd = load('keepalived.conf.virtual_server_group', 'dr');
  assert.deepEqual(gd.cfg.services.filter((s) => s.fwmark).map((s) => `${serviceId(s)}/${s.scheduler}/${s.realservers.map((x) => `${x.address}:${x.port}/${x.method}`).join(' ')}`),
    ['fwm 1/rr/192.168.200.1:1358/dr 192.168.200.2:1358/dr', 'fwm 2/rr/192.168.200.1:1358/dr 192.168.200.2:1358/dr']);
  assert.deepEqual(gd.r.items.filter((i) => /define mark/.test(i.reason)).map((i) => i.line), [18, 19]);

  const fw = load('keepalived.conf.fwmark', 'dr');
  assert.deepEqual(fw.cfg.services.map((s) => [serviceId(s), s.vip, s.port, s.scheduler, s.persistence?.timeout, s.realservers.map((x) => `${x.address}:${x.port}/${x.method}`).join(' ')]),
    [['fwm 1', '0.0.0.0', 0, 'rr', 900, '192.168.201.100:0/dr 192.168.201.101:0/dr']]);
  assert.ok(fw.targets.every((x) => x.spec.port === 80 && x.spec.via === 'direct'));
  assert.equal(fw.cfg.marks, undefined);

  assert.equal(load('keepalived.conf.inhibit').targets[0]!.spec.onDown, 'finish');
  assert.deepEqual(load('keepalived.conf.misc_check_arg').targets[0]!.spec.command, ['/usr/local/bin/script.sh', 'arg1', 'arg2']);
  // An LVS-NAT sorry server: reported without --nat-as (a sorry server is dr or tun), DR with it.
  const sample = load('keepalived.conf.sample');
  assert.equal(sample.policies.get('tcp 10.10.10.2:1358')!.sorry, undefined);
  assert.deepEqual(sample.r.items.filter((i) => i.reason === SORRY_NAT_REASON).map((i) => i.line), [33]);
  assert.deepEqual(load('keepalived.conf.sample', 'dr').policies.get('tcp 10.10.10.2:1358')!.sorry, { address: '192.168.200.200', port: 1358, weight: 1, method: 'dr' });
  const v6 = load('keepalived.conf.IPv6');
  assert.deepEqual(v6.cfg.services.map((s) => `${serviceId(s)} ${s.realservers.map((x) => `${x.address}:${x.port}/${x.method}`).join(' ')}`), ['tcp [ae00::1]:80 ae00::10:25/nat']);
  const vh = load('keepalived.conf.virtualhost');
  assert.equal(vh.targets[0]!.spec.host, 'www.firewall.loc');
  assert.equal(vh.targets[0]!.spec.urls!.length, 2);
});

test('a realistic DR configuration (test/fixtures/keepalived/dr): every translated value', () => {
  const r = importKeepalived(FIXTURE, { configId: 'lb1' });
  const { cfg, targets, policies } = readBack(r.text);
  assert.deepEqual(r.files.map((f) => f.replace(/.*keepalived\/dr\//, '')), ['keepalived.conf', 'conf.d/api.conf']);
  assert.deepEqual(cfg.services.map((s) => [serviceId(s), s.scheduler, s.flags.join(','), s.ops, s.realservers.map((x) => `${x.address}:${x.port}/${x.weight}/${x.method}`).join(' ')]), [
    ['tcp 203.0.113.10:80', 'wrr', '', false, '10.1.0.11:80/3/dr 10.1.0.12:80/1/dr 10.1.0.13:80/2/dr'],
    ['tcp 203.0.113.10:443', 'sh', 'sh-port', false, '10.1.0.11:443/1/dr 10.1.0.12:443/1/dr'],
    ['udp 203.0.113.53:53', 'rr', '', true, '192.0.2.21:53/1/tun 192.0.2.22:53/1/tun'],
    ['tcp [2001:db8:10::10]:80', 'wlc', '', false, '2001:db8:20::11:80/5/dr'],
    ['tcp [2001:db8:10::11]:80', 'wlc', '', false, '2001:db8:20::11:80/5/dr'],
    ['tcp 203.0.113.20:25', 'rr', '', false, '10.2.0.25:25/1/nat'],
    ['fwm 7', 'rr', '', false, '10.1.0.11:0/1/dr'],
    ['tcp 203.0.113.30:8443', 'mh', 'mh-port', false, '10.1.0.31:8443/1/dr'],
  ]);
  assert.equal(cfg.marks, undefined);
  assert.deepEqual(cfg.services[0]!.persistence, { timeout: 600, netmask: '255.255.255.0' });
  const web = policies.get('tcp 203.0.113.10:80')!;
  assert.deepEqual(web.quorum, { quorum: 3, hysteresis: 1 });
  assert.equal(web.allDown, 'sorry-server');
  assert.deepEqual(web.sorry, { address: '10.1.0.99', port: 80, weight: 1, method: 'dr' });
  assert.deepEqual(web.notify, { quorumUp: ['/etc/keepalived/notify.sh', 'quorum', 'up', 'web pool'], quorumDown: ['/etc/keepalived/notify.sh'] });
  const spec = (svc: string, rs: string) => targets.find((x) => x.service === svc && x.address === rs)!.spec;
  const a = spec('tcp 203.0.113.10:80', '10.1.0.11');
  assert.deepEqual(a, {
    type: 'http', port: 80, intervalMs: 5000, timeoutMs: 2000, rise: 1, fall: 3, initial: 'down', via: 'forwarding', viaDefault: true, onDown: 'finish',
    path: '/', host: 'www.example.org', expectStatus: [], tlsVerify: false, payload: '', delayBeforeRetryMs: 1000,
    urls: [
      { path: '/healthz', expectStatus: [304], expectStatusRanges: [[200, 299]] },
      { path: '/static/probe.txt', expectStatus: [], expectStatusRanges: [[200, 299]], digest: '5d41402abc4b2a76b9719d911017c592' },
    ],
    notify: { up: ['/etc/keepalived/rs.sh', 'up', '10.1.0.11'], down: ['/etc/keepalived/rs.sh', 'down', '10.1.0.11'] },
  });
  const b = spec('tcp 203.0.113.10:80', '10.1.0.12');
  assert.deepEqual([b.fall, b.delayBeforeRetryMs, b.warmupMs, b.onDown, b.path, b.expectStatus, b.initial], [5, 500, 3000, 'cut', '/healthz', [200], 'down']);
  const c = spec('tcp 203.0.113.10:80', '10.1.0.13');
  assert.deepEqual([c.type, c.port, c.timeoutMs, c.fall], ['tcp', 8080, 1000, 2]);
  const s = spec('tcp 203.0.113.10:443', '10.1.0.12');
  assert.deepEqual([s.type, s.host, s.intervalMs, s.timeoutMs, s.expectStatusRanges], ['https', 'secure.example.org', 10_000, 3000, [[200, 299]]]);
  const u = spec('udp 203.0.113.53:53', '192.0.2.21');
  assert.deepEqual([u.type, u.payload, u.expect, u.timeoutMs], ['udp', 'ping', 'pong', 2000]);
  const m = spec('udp 203.0.113.53:53', '192.0.2.22');
  assert.deepEqual([m.type, m.command, m.timeoutMs, m.fall], ['exec', ['/usr/local/bin/check-dns', '192.0.2.22', 'example.org'], 2000, 1]);
  assert.deepEqual([spec('tcp 203.0.113.30:8443', '10.1.0.31').fall, spec('tcp 203.0.113.30:8443', '10.1.0.31').delayBeforeRetryMs], [1, undefined]);
  // What is not carried over, each at its place.
  const where = (re: RegExp) => r.items.filter((i) => re.test(`${i.item}: ${i.reason}`)).map((i) => `${i.file.replace(/.*\//, '')}:${i.line}:${i.kind}`);
  assert.deepEqual(where(/^global_defs/), ['keepalived.conf:5:dropped']);
  assert.deepEqual(where(/^vrrp_instance VI_WEB: VRRP is not part of lvs-xdp/), ['keepalived.conf:11:dropped']);
  assert.deepEqual(where(/PING_CHECK: lvs-xdp runs one check per realserver/), ['keepalived.conf:75:dropped']);
  assert.deepEqual(where(/^virtual_server fwmark 7: mark 7: define mark 7 with `lvs-xdp fwmark add 7 \.\.\.` or `marks:` \(the iptables rule that sets it is not in keepalived\.conf\)/), ['keepalived.conf:156:dropped']);
  assert.equal(r.items.length, 4, JSON.stringify(r.items, null, 1));
});

test('an LVS-NAT configuration (test/fixtures/keepalived/nat): least-connection family, thresholds, NAT to other ports, fwmark services, value by value', () => {
  const r = importKeepalived(NAT_FIXTURE, { configId: 'lb1' });
  const { cfg, targets, policies } = readBack(r.text);
  const rs = (x: { address: string; port: number; weight: number; method: string; upperThreshold?: number; lowerThreshold?: number }) =>
    `${x.address}:${x.port}/${x.weight}/${x.method}${x.upperThreshold !== undefined ? `/u${x.upperThreshold}` : ''}${x.lowerThreshold !== undefined ? `/l${x.lowerThreshold}` : ''}`;
  assert.deepEqual(cfg.services.map((s) => [serviceId(s), s.vip, s.port, s.scheduler, s.ops, s.persistence?.timeout, s.realservers.map(rs).join(' ')]), [
    ['tcp 198.51.100.10:80', '198.51.100.10', 80, 'wlc', false, undefined, '10.2.0.11:8080/3/nat/u500/l400 10.2.0.12:8081/1/nat/u200'],
    // No lb_algo, no lb_kind: keepalived's defaults wlc and NAT, written out.
    ['tcp 198.51.100.10:443', '198.51.100.10', 443, 'wlc', false, undefined, '10.2.0.11:8443/1/nat'],
    ['udp 198.51.100.20:53', '198.51.100.20', 53, 'sed', true, undefined, '10.2.0.21:5353/2/nat 10.2.0.22:5353/1/nat'],
    ['tcp 198.51.100.30:3306', '198.51.100.30', 3306, 'wlc', false, undefined, '10.2.0.31:3306/1/nat'],
    ['fwm 10', '0.0.0.0', 0, 'nq', false, 600, '10.2.0.11:0/2/dr/u1000 10.2.0.12:0/1/dr'],
    ['tcp [2001:db8:51::10]:80', '2001:db8:51::10', 80, 'fo', false, undefined, '2001:db8:52::11:80/10/tun 2001:db8:52::12:80/5/tun'],
    ['fwm 11 ipv6', '::', 0, 'fo', false, undefined, '2001:db8:52::11:80/10/tun 2001:db8:52::12:80/5/tun'],
  ]);
  assert.equal(cfg.marks, undefined);
  // The file says what it is: the fwmark service, its family, the NAT port and the thresholds.
  assert.match(r.text, /^ {2}- fwmark: 11\n {4}family: ipv6\n {4}scheduler: fo$/m);
  assert.match(r.text, /^ {6}- address: 10\.2\.0\.11\n {8}weight: 3\n {8}method: nat\n {8}port: 8080\n {8}upper-threshold: 500\n {8}lower-threshold: 400$/m);
  const spec = (svc: string, a: string) => targets.find((x) => x.service === svc && x.address === a)!.spec;
  // A NAT realserver's check probes its own port, directly (the forwarding path is DR / Tun only).
  assert.deepEqual([spec('tcp 198.51.100.10:80', '10.2.0.11').type, spec('tcp 198.51.100.10:80', '10.2.0.11').port, spec('tcp 198.51.100.10:80', '10.2.0.11').path,
    spec('tcp 198.51.100.10:80', '10.2.0.11').timeoutMs, spec('tcp 198.51.100.10:80', '10.2.0.11').via], ['http', 8080, '/healthz', 1000, 'direct']);
  assert.deepEqual([spec('tcp 198.51.100.10:80', '10.2.0.12').type, spec('tcp 198.51.100.10:80', '10.2.0.12').port, spec('tcp 198.51.100.10:80', '10.2.0.12').timeoutMs], ['tcp', 8081, 3000]);
  assert.deepEqual(['10.2.0.11', '10.2.0.12'].map((a) => [spec('fwm 10', a).type, spec('fwm 10', a).port, spec('fwm 10', a).intervalMs, spec('fwm 10', a).via]),
    [['tcp', 443, 5000, 'direct'], ['tcp', 443, 5000, 'direct']]);
  assert.equal(targets.length, 4);
  assert.equal(policies.get('tcp 198.51.100.10:80')!.sorry, undefined);
  const where = (re: RegExp) => r.items.filter((i) => re.test(`${i.item}: ${i.reason}`)).map((i) => `${i.line}:${i.kind}`);
  assert.deepEqual(where(/^virtual_server 198\.51\.100\.10 80: sorry_server: an LVS-NAT sorry server: not supported by lvs-xdp/), ['11:dropped']);
  assert.deepEqual(where(/^virtual_server 198\.51\.100\.30 3306: lb_algo: scheduler lblc is not supported by lvs-xdp: it keeps a cache .*: wlc instead/), ['48:changed']);
  assert.deepEqual(where(/^virtual_server fwmark 10: mark 10: define mark 10 with `lvs-xdp fwmark add 10/), ['56:dropped']);
  assert.deepEqual(where(/^virtual_server_group WEB6: fwmark 11: mark 11: define mark 11 .* the service fwm 11 ipv6$/), ['77:dropped']);
  assert.deepEqual(where(/^virtual_server fwmark 12: lb_kind NAT on a firewall-mark service: not supported by lvs-xdp yet/), ['94:dropped']);
  assert.deepEqual(where(/^real_server 10\.2\.0\.12 8081: TCP_CHECK: timeout 5 s longer than delay_loop 3 s/), ['26:changed']);
  assert.equal(r.items.length, 6, JSON.stringify(r.items, null, 1));
  // --nat-as dr: every NAT is DR, the NAT fwmark service and the sorry server too.
  const dr = readBack(importKeepalived(NAT_FIXTURE, { configId: 'lb1', natAs: 'dr' }).text);
  assert.deepEqual(dr.cfg.services.filter((s) => s.fwmark === 12).map((s) => s.realservers.map(rs).join(' ')), ['10.2.0.41:80/4/dr/u10']);
  assert.deepEqual(dr.policies.get('tcp 198.51.100.10:80')!.sorry, { address: '10.2.0.99', port: 80, weight: 1, method: 'dr' });
  assert.ok(dr.cfg.services.every((s) => s.realservers.every((x) => x.method !== 'nat')));
});

test('the command: report on stderr with file:line, the file with -o, exit 2 with file:line on a syntax error', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lvs-import-cli-'));
  try {
    const cli = (...args: string[]) => spawnSync(process.execPath, [join(repoRoot(), 'bin/lvs-xdp.js'), 'import', 'keepalived', ...args], { encoding: 'utf8' });
    const out = join(dir, 'out.yaml');
    const ok = cli(FIXTURE, '-o', out, '--config-id', 'lb1');
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(ok.stdout, '');
    assert.match(ok.stderr, /keepalived\.conf:156: virtual_server fwmark 7: mark 7: not carried over: define mark 7 with `lvs-xdp fwmark add 7 \.\.\.` or `marks:`/);
    assert.match(ok.stderr, /^imported 8 service\(s\) from 7 virtual_server block\(s\) in 2 file\(s\); 4 item\(s\) not carried over, 0 changed; written to /m);
    assert.equal(readBack(readFileSync(out, 'utf8')).cfg.services.length, 8);
    const bad = join(dir, 'bad.conf');
    writeFileSync(bad, 'virtual_server 10.0.0.1 80 {\n  lb_kind DR\n  real_server 10.0.0.2 80 {\n    weight "1\n  }\n}\n');
    const r = cli(bad);
    assert.equal(r.status, 2);
    assert.equal(r.stderr, `lvs-xdp: ${bad}:4: unterminated double quote\n`);
    const vrrp = cli(join(SAMPLES, 'keepalived.conf.vrrp'));
    assert.equal(vrrp.status, 0);
    assert.match(vrrp.stdout, /^services: \[\]$/m);
    assert.match(vrrp.stderr, /no virtual_server: the service list is empty/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
