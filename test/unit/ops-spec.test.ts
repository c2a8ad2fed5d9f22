/** Health-check settings: schema (file:line:col errors), merging, normalization, refusals. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';
import { healthPlan, durationMs, DEFAULTS } from '../../src/ops/spec.js';

const svc = (check: string, rs = '      - { address: 192.168.1.10 }', extra = ''): string =>
  `services:\n  - vip: 10.0.0.1\n    port: 80\n${extra}    health-check: ${check}\n    realservers:\n${rs}\n`;

function rejects(text: string, re: RegExp): void {
  assert.throws(() => healthPlan(parseConfigText(text, 'd.yaml')), (e: unknown) => {
    assert.ok(e instanceof ConfigError, String(e));
    assert.match(`${(e as ConfigError).message} ${JSON.stringify(e)}`, re);
    return true;
  });
}

test('durations: seconds, ms, s, m', () => {
  assert.equal(durationMs(2), 2000);
  assert.equal(durationMs(0.25), 250);
  assert.equal(durationMs('500ms'), 500);
  assert.equal(durationMs('1.5s'), 1500);
  assert.equal(durationMs('1m'), 60_000);
  assert.equal(durationMs('0s'), undefined);
  assert.equal(durationMs('2x'), undefined);
});

test('defaults and every field normalized', () => {
  const [t] = healthPlan(parseConfigText(svc('{ type: http }'), 'd.yaml')).targets;
  assert.equal(t!.key, 'tcp 10.0.0.1:80/192.168.1.10');
  assert.deepEqual(t!.spec, {
    type: 'http', port: 80, intervalMs: DEFAULTS.intervalMs, timeoutMs: DEFAULTS.timeoutMs, rise: 2, fall: 3, initial: 'up', via: 'forwarding',
    viaDefault: true, onDown: 'finish', path: '/', expectStatus: [], tlsVerify: false, payload: '',
  });
  const [u] = healthPlan(parseConfigText(svc('{ type: https, port: 8443, interval: 5s, timeout: 500ms, rise: 1, fall: 5, path: /hz, host: www.example.com, expect-status: [200, 204], expect-body: "^ok", tls-verify: true, via: forwarding, on-down: cut }'), 'd.yaml')).targets;
  assert.deepEqual(u!.spec, {
    type: 'https', port: 8443, intervalMs: 5000, timeoutMs: 500, rise: 1, fall: 5, initial: 'up', via: 'forwarding', onDown: 'cut',
    path: '/hz', host: 'www.example.com', expectStatus: [200, 204], expectBody: '^ok', tlsVerify: true, payload: '',
  });
  const [x] = healthPlan(parseConfigText(svc('{ type: exec, command: [/bin/check, "{address}:{port}"] }'), 'd.yaml')).targets;
  assert.deepEqual(x!.spec.command, ['/bin/check', '{address}:{port}']);
  const [d] = healthPlan(parseConfigText(svc('{ type: udp, payload: ping, expect: pong }'), 'd.yaml')).targets;
  assert.deepEqual([d!.spec.payload, d!.spec.expect], ['ping', 'pong']);
});

test('via: the forwarding path by default; direct where it cannot work, with the reason; as written otherwise', () => {
  const spec = (check: string, extra = '', port = '80') => healthPlan(parseConfigText(svc(check, undefined, extra).replace('port: 80', `port: ${port}`), 'd.yaml')).targets[0]!.spec;
  assert.deepEqual([spec('{ type: tcp }').via, spec('{ type: tcp }').viaFallback], ['forwarding', undefined]);
  const ex = spec('{ type: exec, command: [/bin/true] }');
  assert.deepEqual([ex.via, ex.viaDefault], ['direct', true]);
  assert.match(ex.viaFallback!, /exec check runs a command/);
  assert.equal(spec('{ type: tcp, port: 8080 }', '', '0').via, 'forwarding');
  const written = spec('{ type: tcp, via: direct }');
  assert.deepEqual([written.via, written.viaDefault, written.viaFallback], ['direct', undefined, undefined]);
});

test('the README example and the opaque fixture forms still parse', () => {
  const plan = healthPlan(parseConfigText(svc('{ type: http, path: /healthz, interval: 2s }', '      - address: 192.168.1.11\n        health-check: { type: tcp, port: 80 }'), 'd.yaml'));
  assert.deepEqual(plan.targets.map((t) => [t.spec.type, t.spec.port, t.spec.intervalMs, t.spec.path]), [['tcp', 80, 2000, '/healthz']]);
});

test('schema errors name file, line, column and field', () => {
  const bad: [string, RegExp][] = [
    [svc('{ type: ftp }'), /d\.yaml:4:\d+.*health-check\.type/s],
    [svc('{ type: tcp, interval: 2x }'), /duration/],
    [svc('{ type: tcp, path: /x }'), /path applies to type http \/ https, not tcp/],
    [svc('{ type: exec }'), /needs command/],
    [svc('{ type: tcp, command: "/bin/true" }'), /command/],
    [svc('{ type: http, expect-body: "(" }'), /not a regular expression/],
    [svc('{ type: tcp, rise: 0 }'), /rise/],
    [svc('{ type: tcp, bogus: 1 }'), /unknown field "bogus"/],
    [svc('{ type: tcp, all-down: sorry-server }'), /needs sorry-server/],
    [svc('{ type: tcp }', '      - { address: 192.168.1.10, health-check: { all-down: keep-last } }'), /unknown field "all-down"/],
  ];
  for (const [text, re] of bad) {
    assert.throws(() => parseConfigText(text, 'd.yaml'), (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.match(`${(e as Error).message} ${(e as ConfigError).location ?? ''} ${(e as ConfigError).field ?? ''}`.replace(/\n/g, ' '), re, text);
      return true;
    });
  }
});

test('plan refusals: timeout > interval, forwarding for exec, bad sorry server', () => {
  rejects(svc('{ type: tcp, interval: 1, timeout: 2 }'), /timeout .* longer than interval/);
  rejects(svc('{ type: exec, command: [x], via: forwarding }'), /exec/);
  rejects(svc('{ type: tcp, sorry-server: { address: nope } }'), /not an IP address/);
  rejects(svc('{ type: tcp, sorry-server: { address: 192.168.1.10 } }'), /also a realserver/);
  rejects(svc('{ type: tcp, sorry-server: { address: "2001:db8::1" } }'), /address family/);
  rejects(svc('{ type: tcp, sorry-server: { address: 192.168.1.99, mac: zz } }'), /not a MAC/);
});

test('via: forwarding is accepted for LVS-Tun realservers (tcp, udp, http)', () => {
  for (const type of ['tcp', 'udp', 'http']) {
    const [t] = healthPlan(parseConfigText(svc(`{ type: ${type}, port: 80, via: forwarding }`, '      - { address: 192.168.1.10, method: tun }'), 'd.yaml')).targets;
    assert.equal(t!.method, 'tun');
    assert.equal(t!.spec.via, 'forwarding');
  }
});

test('all-down defaults: keep-last, or sorry-server when a sorry server is given', () => {
  const p1 = healthPlan(parseConfigText(svc('{ type: tcp }'), 'd.yaml'));
  assert.deepEqual(p1.policies.get('tcp 10.0.0.1:80'), { allDown: 'keep-last' });
  const p2 = healthPlan(parseConfigText(svc('{ type: tcp, sorry-server: { address: 192.168.1.99, method: tun } }'), 'd.yaml'));
  assert.deepEqual(p2.policies.get('tcp 10.0.0.1:80'), { allDown: 'sorry-server', sorry: { address: '192.168.1.99', port: 80, weight: 1, method: 'tun' } });
});
