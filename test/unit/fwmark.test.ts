/** Firewall-mark services and tunnel options in ipvsadm's formats, marks in the config file and
 *  the `lvs-xdp fwmark` command, the mark compiler and classifier, and small ipvsadm habits. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyCommands, formatList, formatSave, formatStats, parseRules } from '../../src/ipvsadm/index.js';
import { ConfigError } from '../../src/model/config-error.js';
import { emptyConfig, type DirectorConfig } from '../../src/model/types.js';
import { validateConfig } from '../../src/model/validate.js';
import { formatConfigYaml, parseConfigText } from '../../src/config/index.js';
import { classify, compileMarks, parsePorts, parsePrefix } from '../../src/model/fwmark.js';
import { addMarkRule, deleteMarkRule, formatMarks, markRule } from '../../src/cli/fwmark.js';
import { parseIpvsadmArgv, isIpvsadmInvocation } from '../../src/cli/ipvsadm.js';
import { desiredConfig } from '../../src/config/file.js';
import { diffConfig, formatDiff } from '../../src/diff/index.js';
import { checkSpecFor } from '../../src/ops/spec.js';

const restore = (text: string, into: DirectorConfig = emptyConfig()): DirectorConfig => applyCommands(into, parseRules(text, 'rules.txt'));

const RULES = `-A -f 2 -6 -s sh
-a -f 2 -6 -r [2001:db8::10] -g
-A -t 10.0.0.1:80 -s mh
-a -t 10.0.0.1:80 -r 192.168.1.5 -g
-A -f 1 -s rr -p
-a -f 1 -r 192.168.1.11 -i
-a -f 1 -r 192.168.1.10 -g -w 2
-a -f 1 -r 192.168.1.12:80 -g
-A -f 1 -6 -s rr
`;

test('ipvsadm -S of firewall-mark services: `-f MARK [-6]`, realservers with their port (0 when none), after the port services', () => {
  const cfg = restore(RULES);
  validateConfig(cfg);
  const saved = formatSave(cfg);
  assert.equal(saved, [
    '-A -t 10.0.0.1:80 -s mh',
    '-a -t 10.0.0.1:80 -r 192.168.1.5:80 -g -w 1',
    '-A -f 1 -s rr -p 300',
    '-a -f 1 -r 192.168.1.10:0 -g -w 2',
    '-a -f 1 -r 192.168.1.11:0 -i -w 1 --tun-type ipip',
    '-a -f 1 -r 192.168.1.12:80 -g -w 1',
    '-A -f 1 -6 -s rr',
    '-A -f 2 -6 -s sh',
    '-a -f 2 -6 -r [2001:db8::10]:0 -g -w 1',
    '',
  ].join('\n'));
  // -S is a fixed point of -R.
  assert.equal(formatSave(restore(saved)), saved);
  // -E, -e, -d and -D find a mark's service by mark and family.
  const edited = restore('-E -f 1 -s wrr\n-e -f 1 -r 192.168.1.10 -g -w 5\n-d -f 1 -r 192.168.1.12\n-D -f 1 -6', cfg);
  assert.equal(formatSave(edited).split('\n').filter((l) => l.includes('-f 1')).join('\n'), [
    '-A -f 1 -s wrr',
    '-a -f 1 -r 192.168.1.10:0 -g -w 5',
    '-a -f 1 -r 192.168.1.11:0 -i -w 1 --tun-type ipip',
  ].join('\n'));
  assert.throws(() => restore('-A -f 1 -s rr', cfg), /rules\.txt:1: -A: service fwm 1 already exists/);
  assert.throws(() => restore('-a -f 3 -r 192.168.1.10', cfg), /service fwm 3 does not exist/);
  assert.throws(() => restore('-a -f 2 -6 -r 192.168.1.10 -g', cfg), /LVS-DR cannot forward an IPv6 VIP to an IPv4 realserver/);
});

test('ipvsadm -L of firewall-mark services: `FWM  <mark>` rows, ` IPv6` for IPv6, byte for byte', () => {
  const cfg = restore(RULES);
  assert.equal(formatList(cfg, { version: '9.9.9', tableSizeLabel: 4096 }), [
    'lvs-xdp version 9.9.9 (size=4096)',
    'Prot LocalAddress:Port Scheduler Flags',
    '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
    'TCP  10.0.0.1:80 mh',
    '  -> 192.168.1.5:80               Route   1      0          0         ',
    'FWM  1 rr persistent 300',
    '  -> 192.168.1.10:0               Route   2      0          0         ',
    '  -> 192.168.1.11:0               Tunnel  1      0          0         ',
    '  -> 192.168.1.12:80              Route   1      0          0         ',
    'FWM  1 IPv6 rr',
    'FWM  2 IPv6 sh',
    '  -> [2001:db8::10]:0             Route   1      0          0         ',
    '',
  ].join('\n'));
  const stats = formatStats(cfg, { version: '9.9.9', noVersionLine: true, rows: new Map([['fwm 1', { conns: 3, inPkts: 40, outPkts: 0, inBytes: 5000, outBytes: 0 }]]) });
  assert.equal(stats.split('\n')[4], 'FWM  1                                   3       40        0     5000        0');
  assert.equal(stats.split('\n')[9], 'FWM  2 IPv6                              0        0        0        0        0');
});

test('a Tun file saved by a current IPVS director (ipvsadm 1.30+: --tun-type ipip on every Tun realserver) loads and saves the same', () => {
  const ipvs = [
    '-A -t 192.168.50.100:53 -s rr',
    '-a -t 192.168.50.100:53 -r 192.168.52.100:53 -i -w 1 --tun-type ipip',
    '-a -t 192.168.50.100:53 -r 192.168.52.101:53 -i -w 1 --tun-type ipip',
    '-A -u 192.168.50.100:53 -s rr',
    '-a -u 192.168.50.100:53 -r 192.168.52.100:53 -i -w 1 --tun-type ipip',
    '',
  ].join('\n');
  assert.equal(formatSave(restore(ipvs)), ipvs);
  // Older files without it load too, and -S adds it as ipvsadm 1.30+ would.
  assert.equal(formatSave(restore(ipvs.replaceAll(' --tun-type ipip', ''))), ipvs);
  assert.equal(formatSave(restore('-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.1.0.1 -i --tun-type=ipip --mac 02:00:00:00:00:09\n')),
    '-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.1.0.1:80 -i -w 1 --tun-type ipip --mac 02:00:00:00:00:09\n');
});

test('marks in the config file: parsed, canonical, round trip; errors name the file, line and field', () => {
  const yaml = `marks:
  - mark: 1
    match:
      - { protocol: tcp, address: 10.0.0.1, ports: "80,443" }
      - { address: 10.0.1.0/24, ports: 8000-8099 }
      - { protocol: udp, address: "2001:DB8::/64" }
services:
  - fwmark: 1
    scheduler: rr
    persistence: 300
    realservers: [{ address: 192.168.1.10 }, { address: 192.168.1.11, port: 80 }]
  - fwmark: 1
    family: ipv6
    scheduler: sh
    realservers: [{ address: "2001:db8:1::10" }]
`;
  const cfg = parseConfigText(yaml, 'm.yaml');
  assert.deepEqual(cfg.marks, [{ mark: 1, match: [
    { protocol: 'tcp', address: '10.0.0.1', ports: [{ from: 80, to: 80 }, { from: 443, to: 443 }] },
    { protocol: 'tcp', address: '10.0.1.0/24', ports: [{ from: 8000, to: 8099 }] },
    { protocol: 'udp', address: '2001:db8::/64', ports: [] },
  ] }]);
  assert.deepEqual(cfg.services.map((s) => [s.fwmark, s.vip, s.port, s.realservers.map((r) => r.port)]), [[1, '0.0.0.0', 0, [0, 80]], [1, '::', 0, [0]]]);
  assert.deepEqual(parseConfigText(formatConfigYaml(cfg), 'again.yaml'), cfg);
  // A firewall-mark service's protocol is a stand-in (its marks' rules carry the protocols).
  assert.equal(parseConfigText('services:\n  - { fwmark: 9, protocol: udp, scheduler: rr }\n', 'p.yaml').services[0]!.protocol, 'tcp');
  const bad = (text: string, message: RegExp) => assert.throws(() => parseConfigText(text, 'b.yaml'), (e: unknown) => {
    assert.ok(e instanceof ConfigError, String(e));
    assert.match(e.message, message);
    return true;
  });
  const svc = 'services: []\n';
  bad(`marks:\n  - mark: 1\n    match:\n      - { protocol: tcp, address: 10.0.0.1/24 }\n${svc}`,
    /^b\.yaml:4:\d+: marks\[0\]\.match\[0\]\.address: 10\.0\.0\.1\/24 has host bits set \(the prefix is 10\.0\.0\.0\/24\)/);
  bad(`marks:\n  - mark: 1\n    match:\n      - { protocol: tcp, address: 10.0.0.1, ports: "90-80" }\n${svc}`, /^b\.yaml:4:\d+: marks\[0\]\.match\[0\]\.ports: range 90-80 ends before it starts/);
  bad(`marks:\n  - mark: 0\n    match: [{ address: 10.0.0.1 }]\n${svc}`, /^b\.yaml:2:\d+: marks\[0\]\.mark: mark 0 out of range 1\.\.4294967295/);
  bad(`marks:\n  - mark: 1\n    match:\n      - { address: 10.0.0.0/24, ports: 80 }\n  - mark: 2\n    match:\n      - { address: 10.0.0.0/24, ports: "70-90" }\n${svc}`,
    /^b\.yaml:7:\d+: marks\[1\]\.match\[0\]\.ports\[0\]: tcp 10\.0\.0\.0\/24 port 80 is in mark 1 and in mark 2: a packet can have one mark/);
  bad(`marks:\n  - mark: 1\n    match:\n      - { address: 10.0.0.0/24, ports: "1,2,3,4,5,6,7,8,9" }\n${svc}`,
    /^b\.yaml:4:\d+: marks\[0\]\.match\[0\]: tcp 10\.0\.0\.0\/24: 9 port ranges apply to this prefix .* the data plane holds 8/);
  bad('services:\n  - { fwmark: 1, vip: 10.0.0.1, scheduler: rr }\n', /^b\.yaml:2:\d+: services\[0\]\.vip: a firewall-mark service \(fwmark\) has no vip/);
  bad('services:\n  - { fwmark: 0, scheduler: rr }\n', /^b\.yaml:2:\d+: services\[0\]\.fwmark: service fwm 0|fwmark 0 out of range 1\.\.4294967295/);
  // A more specific prefix may take a port of a shorter one (no conflict).
  parseConfigText(`marks:\n  - { mark: 1, match: [{ address: 10.0.0.0/24, ports: 80 }] }\n  - { mark: 2, match: [{ address: 10.0.0.9, ports: 80 }] }\n${svc}`, 'ok.yaml');
});

test('an ipvsadm rule file keeps the running marks (as -C / -R keep iptables rules); -C keeps them', () => {
  const running: DirectorConfig = { services: [], marks: [{ mark: 1, match: [{ protocol: 'tcp', address: '10.0.0.1', ports: [] }] }] };
  const rules = { config: restore('-A -f 1 -s rr'), rules: true };
  assert.deepEqual(desiredConfig(rules, running).marks, running.marks);
  assert.deepEqual(restore('-C\n-A -f 1 -s rr', running).marks, running.marks);
  assert.equal(desiredConfig({ config: { services: [] }, rules: false }, running).marks, undefined);
});

test('lvs-xdp fwmark: rules in iptables words, add / del / list', () => {
  assert.deepEqual(markRule({ protocol: 'tcp', destination: '10.0.0.1', dport: '80,443' }),
    { protocol: 'tcp', address: '10.0.0.1', ports: [{ from: 80, to: 80 }, { from: 443, to: 443 }] });
  assert.deepEqual(markRule({ destination: '2001:DB8::/48', dports: '1000:2000' }),
    { protocol: 'tcp', address: '2001:db8::/48', ports: [{ from: 1000, to: 2000 }] });
  assert.throws(() => markRule({ protocol: 'icmp', destination: '10.0.0.1' }), /-p: protocol "icmp" is not tcp or udp/);
  assert.throws(() => markRule({ protocol: 'tcp' }), /-d: a destination is required/);
  assert.throws(() => markRule({ destination: '10.0.0.1', dport: '70000' }), /--dport: port 70000 out of range 0\.\.65535/);
  let cfg: DirectorConfig = restore('-A -f 1 -s rr -p');
  cfg = addMarkRule(cfg, 1, markRule({ destination: '10.0.0.1', dport: '80,443' }));
  cfg = addMarkRule(cfg, 2, markRule({ protocol: 'udp', destination: '10.0.0.0/24' }));
  cfg = addMarkRule(cfg, 1, markRule({ destination: '10.0.0.2', dport: '80' }));
  assert.throws(() => addMarkRule(cfg, 1, markRule({ destination: '10.0.0.2', dport: '80' })), /mark 1 already has the rule -p tcp -d 10\.0\.0\.2 --dport 80/);
  validateConfig(cfg);
  assert.equal(formatMarks(cfg), [
    'mark  prot  destination  ports   service',
    '1     tcp   10.0.0.1     80,443  fwm 1',
    '1     tcp   10.0.0.2     80      fwm 1',
    '2     udp   10.0.0.0/24  all     (none: ipvsadm -A -f MARK adds it)',
    '',
  ].join('\n'));
  cfg = deleteMarkRule(cfg, 1, markRule({ destination: '10.0.0.1', dport: '80,443' }));
  assert.deepEqual(cfg.marks!.map((m) => [m.mark, m.match.length]), [[1, 1], [2, 1]]);
  assert.throws(() => deleteMarkRule(cfg, 1, markRule({ destination: '10.0.0.9' })), /mark 1 has no rule -p tcp -d 10\.0\.0\.9/);
  cfg = deleteMarkRule(cfg, 2);
  cfg = deleteMarkRule(cfg, 1, markRule({ destination: '10.0.0.2', dport: '80' }));
  assert.equal(cfg.marks, undefined);
  assert.throws(() => deleteMarkRule(cfg, 1), /mark 1 is not defined/);
});

test('mark compiler and classifier: longest prefix first, inherited ranges, families and protocols apart', () => {
  assert.equal(parsePrefix('10.0.0.0/33'), 'prefix length "33" out of range 0..32');
  assert.deepEqual(parsePorts('80, 443,1000-1010'), [{ from: 80, to: 80 }, { from: 443, to: 443 }, { from: 1000, to: 1010 }]);
  const { entries, problems } = compileMarks([
    { mark: 1, match: [{ protocol: 'tcp', address: '10.0.0.0/8', ports: [] }] },
    { mark: 2, match: [{ protocol: 'tcp', address: '10.1.0.0/16', ports: [{ from: 443, to: 443 }] }] },
    { mark: 3, match: [{ protocol: 'tcp', address: '10.1.2.3', ports: [{ from: 22, to: 22 }] }] },
    { mark: 4, match: [{ protocol: 'udp', address: '::/0', ports: [{ from: 53, to: 53 }] }] },
  ]);
  assert.deepEqual(problems, []);
  const e = entries.find((x) => x.prefix.plen === 32)!;
  assert.deepEqual(e.ranges.map((r) => r.mark), [3, 2, 1], 'own range, then the /16\'s, then the /8\'s');
  assert.equal(classify(entries, 4, 'tcp', '10.1.2.3', 22), 3);
  assert.equal(classify(entries, 4, 'tcp', '10.1.2.3', 443), 2);
  assert.equal(classify(entries, 4, 'tcp', '10.1.2.3', 80), 1);
  assert.equal(classify(entries, 4, 'udp', '10.1.2.3', 53), 0);
  assert.equal(classify(entries, 6, 'udp', '2001:db8::1', 53), 4);
  assert.equal(classify(entries, 4, 'tcp', '11.0.0.1', 80), 0);
});

test('small ipvsadm habits: no arguments lists; --stats with --rate is the stats listing; -L -f MARK [-6]', () => {
  assert.equal(isIpvsadmInvocation([]), true);
  assert.equal(parseIpvsadmArgv([]).action, 'list');
  const p = parseIpvsadmArgv(['-L', '-n', '--stats', '--rate']);
  assert.equal(p.action, 'list');
  assert.ok(p.stats && p.rate);
  assert.deepEqual(parseIpvsadmArgv(['-L', '-n', '-f', '7', '-6']).service, { fwmark: 7, protocol: 'tcp', vip: '::', port: 0 });
  assert.throws(() => parseIpvsadmArgv(['-L', '-6']), /-6 used before -f/);
  assert.throws(() => parseIpvsadmArgv(['-L', '-f', 'x']), /invalid fwmark value "x"/);
});

test('a change of marks alone is a change (diff, apply): added, edited and removed marks are listed', () => {
  const a: DirectorConfig = { services: [] };
  const b = addMarkRule(a, 1, markRule({ destination: '10.0.0.1', dport: '80,443' }));
  const c = addMarkRule(b, 1, markRule({ protocol: 'udp', destination: '10.0.0.0/24' }));
  assert.deepEqual(diffConfig(a, a), []);
  assert.equal(formatDiff(diffConfig(a, b)).text.split('\n')[0], '~ fwmark 1: none -> -p tcp -d 10.0.0.1 --dport 80,443');
  assert.equal(formatDiff(diffConfig(b, c)).text.split('\n')[0], '~ fwmark 1: -p tcp -d 10.0.0.1 --dport 80,443 -> -p tcp -d 10.0.0.1 --dport 80,443; -p udp -d 10.0.0.0/24');
  assert.equal(formatDiff(diffConfig(c, a)).text.split('\n')[0], '~ fwmark 1: -p tcp -d 10.0.0.1 --dport 80,443; -p udp -d 10.0.0.0/24 -> none');
});

test('health checks of a firewall-mark service: a port is needed (the service has none), and no check through the VIP', () => {
  const cfg = restore('-A -f 1 -s rr\n-a -f 1 -r 192.168.1.10 -g');
  const svc = cfg.services[0]!;
  const rs = svc.realservers[0]!;
  assert.throws(() => checkSpecFor({ ...svc, healthCheck: { type: 'tcp' } }, rs), /an all-ports \(firewall-mark\) service needs health-check port: for tcp checks/);
  assert.equal(checkSpecFor({ ...svc, healthCheck: { type: 'tcp', port: 443 } }, rs)?.port, 443);
  assert.throws(() => checkSpecFor({ ...svc, healthCheck: { type: 'tcp', port: 443, via: 'forwarding' } }, rs), /a firewall-mark service has none: probe the realserver directly/);
});
