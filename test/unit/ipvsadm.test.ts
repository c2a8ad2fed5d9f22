/** ipvsadm compatibility: restore -> save round trips, listings byte for byte, every bad input. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import {
  applyCommands, formatConnections, formatLargeNumber, formatList, formatRate, formatSave, formatStats,
  parseRule, parseRules, tokenize, type ConnectionEntry, type RateRow, type StatsRow,
} from '../../src/ipvsadm/index.js';
import { ConfigError } from '../../src/model/config-error.js';
import { expandShortOptions } from '../../src/ipvsadm/argv.js';
import { emptyConfig, type DirectorConfig } from '../../src/model/types.js';
import { validateConfig } from '../../src/model/validate.js';

const dir = fileURLToPath(new URL('../../../test/fixtures/ipvsadm/', import.meta.url));
const fixture = (name: string): string => readFileSync(join(dir, name), 'utf8');
const restore = (text: string, source = 'rules.txt'): DirectorConfig => applyCommands(emptyConfig(), parseRules(text, source));

const ruleFixtures = readdirSync(dir).filter((f) => f.endsWith('.rules')).map((f) => f.slice(0, -'.rules'.length));

test('fixtures exist', () => assert.ok(ruleFixtures.length >= 3));

for (const name of ruleFixtures) {
  test(`restore ${name}.rules -> save equals ${name}.save, and save is a fixed point`, () => {
    const saved = formatSave(restore(fixture(`${name}.rules`), `${name}.rules`));
    assert.equal(saved, fixture(`${name}.save`));
    assert.equal(formatSave(restore(saved)), saved);
    // What the rules produce is a valid model.
    validateConfig(restore(saved));
  });
}

const notes = (): DirectorConfig => restore(fixture('notes-example.rules'));
const conns = new Map([
  ['tcp 10.0.0.1:80 -> 192.168.1.10', { active: 12, inactive: 340 }],
  ['tcp 10.0.0.1:80 -> 192.168.1.11', { active: 25, inactive: 610 }],
  ['udp 10.0.0.2:53 -> 192.168.1.20', { active: 0, inactive: 4 }],
]);

test('-L -n matches the notes example line for line (with the kernel header)', () => {
  const out = formatList(notes(), { version: '1.2.1', tableSizeLabel: 4096, product: 'IP Virtual Server', conns });
  assert.equal(out, [
    'IP Virtual Server version 1.2.1 (size=4096)',
    'Prot LocalAddress:Port Scheduler Flags',
    '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
    'TCP  10.0.0.1:80 mh (mh-fallback,mh-port)',
    '  -> 192.168.1.10:80              Route   1      12         340       ',
    '  -> 192.168.1.11:80              Tunnel  2      25         610       ',
    'UDP  10.0.0.2:53 sh (sh-port) persistent 300 mask 255.255.255.0 ops',
    '  -> 192.168.1.20:53              Route   1      0          4         ',
    '',
  ].join('\n'));
});

test('listings match the expected fixture files byte for byte', () => {
  const v6 = restore(fixture('ipv6.rules'));
  const mixed = restore(fixture('mixed.rules'));
  assert.equal(formatList(notes(), { version: '0.1.0', tableSizeLabel: 65537, conns }), fixture('notes-example.list'));
  assert.equal(formatList(v6, { version: '0.1.0' }), fixture('ipv6.list'));
  assert.equal(formatList(mixed, { version: '0.1.0', tableSizeLabel: 65537 }), fixture('mixed.list'));

  const stats = new Map<string, StatsRow>([
    ['tcp 10.0.0.1:80', { conns: 1234, inPkts: 987654, outPkts: 0, inBytes: 123456789, outBytes: 0 }],
    ['tcp 10.0.0.1:80 -> 192.168.1.10', { conns: 600, inPkts: 500000, outPkts: 0, inBytes: 60000000, outBytes: 0 }],
    ['tcp 10.0.0.1:80 -> 192.168.1.11', { conns: 99_999_999, inPkts: 100_000_000, outPkts: 99_999_999_999, inBytes: 12_345_678_901_234n, outBytes: 2n ** 64n - 1n }],
    ['udp 10.0.0.2:53', { conns: 7, inPkts: 7, outPkts: 0, inBytes: 1_000_000_000, outBytes: 0 }],
  ]);
  assert.equal(formatStats(notes(), { version: '0.1.0', rows: stats }), fixture('notes-example.stats'));
  assert.equal(formatStats(notes(), { version: '0.1.0', rows: stats, exact: true }), fixture('notes-example.stats-exact'));
  const rates = new Map<string, RateRow>([
    ['tcp 10.0.0.1:80', { cps: 12, inPps: 3400, outPps: 0, inBps: 2_500_000_000, outBps: 0 }],
    ['udp 10.0.0.2:53 -> 192.168.1.20', { cps: 1, inPps: 1, outPps: 0, inBps: 80, outBps: 0 }],
  ]);
  assert.equal(formatRate(notes(), { version: '0.1.0', rows: rates }), fixture('notes-example.rate'));
  assert.equal(formatRate(v6, { version: '0.1.0', rows: rates, exact: true }), fixture('ipv6.rate-exact'));
});

test('stats rows line up with the notes example', () => {
  const out = formatStats(notes(), {
    version: '1.2.1',
    rows: new Map([
      ['tcp 10.0.0.1:80', { conns: 1234, inPkts: 987654, outPkts: 0, inBytes: 123456789, outBytes: 0 }],
      ['tcp 10.0.0.1:80 -> 192.168.1.10', { conns: 600, inPkts: 500000, outPkts: 0, inBytes: 60000000, outBytes: 0 }],
    ]),
  }).split('\n');
  assert.equal(out[1], 'Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes');
  assert.equal(out[2], '  -> RemoteAddress:Port');
  assert.equal(out[3], 'TCP  10.0.0.1:80                      1234   987654        0  123456K        0');
  assert.equal(out[4], '  -> 192.168.1.10:80                   600   500000        0 60000000        0');
});

test('number scaling (print_largenum)', () => {
  assert.equal(formatLargeNumber(0), '        0');
  assert.equal(formatLargeNumber(99_999_999), ' 99999999');
  assert.equal(formatLargeNumber(100_000_000), '  100000K');
  assert.equal(formatLargeNumber(999_999_999), '  999999K');
  assert.equal(formatLargeNumber(1_000_000_000), '    1000M');
  assert.equal(formatLargeNumber(99_999_999_999), '   99999M');
  assert.equal(formatLargeNumber(100_000_000_000), '     100G');
  assert.equal(formatLargeNumber(100_000_000_000_000n), '     100T');
  assert.equal(formatLargeNumber(12345, true), '    12345');
  assert.equal(formatLargeNumber(123_456_789, true), ' 123456789');
  assert.equal(formatLargeNumber(2n ** 64n - 1n, true), ' 18446744073709551615');
});

test('-L -n -c matches the notes example and the fixture', () => {
  const entries: ConnectionEntry[] = [
    { protocol: 'tcp', expire: 896, state: 'ESTABLISHED', client: { address: '203.0.113.7', port: 51234 }, virtual: { address: '10.0.0.1', port: 80 }, realserver: { address: '192.168.1.10', port: 80 } },
    { protocol: 'udp', expire: 5, state: 'UDP', client: { address: '2001:db8:ffff::1234', port: 5353 }, virtual: { address: '2001:db8::53', port: 53 }, realserver: { address: '2001:db8::10', port: 53 } },
    { protocol: 'tcp', expire: 6000.7, state: 'SYN_RECV', client: { address: '198.51.100.200', port: 1 }, virtual: { address: '10.0.0.1', port: 80 }, realserver: { address: '192.168.1.11', port: 80 } },
  ];
  const out = formatConnections(entries);
  assert.equal(out.split('\n').slice(0, 3).join('\n'), [
    'IPVS connection entries',
    'pro expire state       source             virtual            destination',
    'TCP 14:56  ESTABLISHED 203.0.113.7:51234  10.0.0.1:80        192.168.1.10:80',
  ].join('\n'));
  assert.equal(out, fixture('connections.txt'));
});

function rejects(text: string, message: string | RegExp): void {
  assert.throws(() => restore(text), (e: unknown) => {
    assert.ok(e instanceof ConfigError, String(e));
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

test('every class of bad input is refused with line, option and problem', () => {
  const A = '-A -t 10.0.0.1:80 -s mh\n';
  rejects(`${A}\n\n\n\n\n-a -t 10.0.0.1:80 -r 192.168.1.10 -w 70000`, 'rules.txt:7: -w: weight 70000 out of range 0..65535');
  rejects(`${A}-a -t 10.0.0.1:80 -r 192.168.1.10 -w heavy`, 'rules.txt:2: -w: weight "heavy" is not a number');
  rejects(`${A}-a -t 10.0.0.1:80 -r [2001:db8::1]:80 -m`, 'rules.txt:2: -r: LVS-NAT cannot forward an IPv4 VIP to an IPv6 realserver (only Tun, -i, may mix families)');
  rejects(`-A -t 10.0.0.1:0 -s mh -p\n-a -t 10.0.0.1:0 -r 192.168.1.10:8080 --masquerading`, 'rules.txt:2: -r: port 8080 on an all-ports service: LVS-NAT keeps the client\'s destination port there');
  rejects(`${A}-a -t 10.0.0.1:80 -r 192.168.1.10 -g -i`, 'rules.txt:2: -i: given more than once (with -g)');
  rejects(`${A}-a -t 10.0.0.1:80 -r 192.168.1.10:8080`, 'rules.txt:2: -r: port 8080 differs from the service port 80; DR and Tun forward to the service port and cannot change it (NAT, -m, can)');
  rejects(`${A}-a -t 10.0.0.1:80 -r [2001:db8::1]:80 -g`, 'rules.txt:2: -r: LVS-DR cannot forward an IPv4 VIP to an IPv6 realserver (only Tun, -i, may mix families)');
  rejects(`${A}-a -t 10.0.0.1:80 -r 192.168.1.10 --mac 02:00`, 'rules.txt:2: --mac: "02:00" is not a MAC address (aa:bb:cc:dd:ee:ff)');
  rejects(`${A}-a -t 10.0.0.1:80`, 'rules.txt:2: -a: a realserver is required (-r addr[:port])');
  rejects(`${A}-a -t 10.0.0.1:80 -r 192.168.1.10\n-a -t 10.0.0.1:80 -r 192.168.1.10`, 'rules.txt:3: -a: realserver 192.168.1.10 of service tcp 10.0.0.1:80 already exists');
  rejects('-a -t 10.0.0.1:80 -r 192.168.1.10', 'rules.txt:1: -a: service tcp 10.0.0.1:80 does not exist');
  rejects(`${A}-e -t 10.0.0.1:80 -r 192.168.1.10 -w 2`, 'rules.txt:2: -e: realserver 192.168.1.10 of service tcp 10.0.0.1:80 does not exist');
  rejects(`${A}-d -t 10.0.0.1:80 -r 192.168.1.10`, 'rules.txt:2: -d: realserver 192.168.1.10 of service tcp 10.0.0.1:80 does not exist');
  rejects(`${A}${A}`, 'rules.txt:2: -A: service tcp 10.0.0.1:80 already exists');
  rejects('-E -t 10.0.0.1:80 -s rr', 'rules.txt:1: -E: service tcp 10.0.0.1:80 does not exist');
  rejects('-D -u 10.0.0.1:80', 'rules.txt:1: -D: service udp 10.0.0.1:80 does not exist');
  rejects('-A -t 10.0.0.1:80 -s lblcr', "rules.txt:1: -s: scheduler lblcr is not supported by the XDP data plane: it keeps a cache of destination address -> set of realservers that grows and shrinks by comparing every member's connections with every realserver's: a search over every realserver that the data plane does not make per packet (dh keeps destination locality, wlc balances by connections) (supported: mh, sh, dh, rr, wrr, lc, wlc, sed, nq, twos, fo, ovf)");
  rejects('-A -t 10.0.0.1:80 -s lblc', 'rules.txt:1: -s: scheduler lblc is not supported by the XDP data plane: it keeps a cache of destination address -> realserver and moves an address when its realserver has more connections than its weight while some other has fewer than half of its own: a search over every realserver that the data plane does not make per packet (dh keeps destination locality, wlc balances by connections) (supported: mh, sh, dh, rr, wrr, lc, wlc, sed, nq, twos, fo, ovf)');
  rejects(`${A}-a -t 10.0.0.1:80 -r 192.168.1.10 -x 5 -y 6`, 'rules.txt:2: -y: lower threshold 6 is above the upper threshold 5');
  rejects(`${A}-a -t 10.0.0.1:80 -r 192.168.1.10 -y 6`, 'rules.txt:2: -y: lower threshold 6 is above the upper threshold 0 (no -x)');
  rejects(`${A}-a -t 10.0.0.1:80 -r 192.168.1.10 -x -1`, 'rules.txt:2: -x: upper threshold -1 out of range 0..2147483647');
  rejects(`${A}-a -t 10.0.0.1:80 -r 192.168.1.10 -x 2147483648`, 'rules.txt:2: -x: upper threshold 2147483648 out of range 0..2147483647');
  rejects('-A -t 10.0.0.1:80 -x 5', 'rules.txt:1: -x: not valid with -A');
  rejects('-A -t 10.0.0.1:80 -s random', 'rules.txt:1: -s: unknown scheduler "random" (supported: mh, sh, dh, rr, wrr, lc, wlc, sed, nq, twos, fo, ovf)');
  rejects('-A -t 10.0.0.1:80 -s mh -b sh-port', 'rules.txt:1: -b: scheduler flag sh-port applies only to scheduler sh, not mh');
  rejects('-A -t 10.0.0.1:80 -s sh -b flag-1', 'rules.txt:1: -b: unknown scheduler flag "flag-1" (known: sh-fallback, sh-port, mh-fallback, mh-port)');
  // ipvsadm's parse_timeout(optarg, 1, MAX_TIMEOUT = 31 days) and its message.
  rejects('-A -t 10.0.0.1:80 -s sh -p 0', "rules.txt:1: -p: invalid timeout value `0' specified (persistence timeout: 1..2678400 seconds, 31 days)");
  rejects('-A -t 10.0.0.1:80 -s sh -p 2678401', "rules.txt:1: -p: invalid timeout value `2678401' specified (persistence timeout: 1..2678400 seconds, 31 days)");
  rejects('-A -t 10.0.0.1:80 -s sh -p 3000000000', "rules.txt:1: -p: invalid timeout value `3000000000' specified (persistence timeout: 1..2678400 seconds, 31 days)");
  rejects('-A -t 10.0.0.1:80 -s sh -M 24', 'rules.txt:1: -M: a persistence netmask needs persistence (-p)');
  rejects('-A -t 10.0.0.1:80 -s sh -p -M 255.0.255.0', 'rules.txt:1: -M: netmask 255.0.255.0 is not contiguous');
  rejects('-A -t [2001:db8::1]:80 -s sh -p -M 129', 'rules.txt:1: -M: prefix length 129 out of range 0..128 for IPv6');
  rejects('-A -t 10.0.0.1:80 -s sh -o', 'rules.txt:1: -o: one-packet scheduling is only for UDP services');
  rejects('-A -t www.example.com:80 -s sh', 'rules.txt:1: -t: "www.example.com": host names are not resolved (no DNS); use an IP address');
  rejects('-A -t 10.0.0.1:http -s sh', 'rules.txt:1: -t: port "http": service names are not resolved; use a port number');
  rejects('-A -t 10.0.0.1:65536 -s sh', 'rules.txt:1: -t: port 65536 out of range 0..65535');
  rejects('-A -t 10.0.0.300:80 -s sh', 'rules.txt:1: -t: "10.0.0.300" is not an IPv4 or IPv6 address');
  rejects('-A -t [10.0.0.1]:80 -s sh', 'rules.txt:1: -t: [10.0.0.1]:80: brackets are for IPv6 addresses');
  rejects('-A -s sh', 'rules.txt:1: -A: a virtual service is required (-t addr:port, -u addr:port or -f mark)');
  rejects('-A -t 10.0.0.1:80 -u 10.0.0.1:80 -s sh', 'rules.txt:1: -u: given more than once (with -t)');
  rejects('-A -f 0 -s sh', 'rules.txt:1: -f: invalid fwmark value "0" (an integer 1..4294967295)');
  rejects('-A -f 4294967296 -s sh', 'rules.txt:1: -f: invalid fwmark value "4294967296" (an integer 1..4294967295)');
  rejects('-A -t 10.0.0.1:80 -6 -s sh', 'rules.txt:1: -6: -6 is for a firewall-mark service (-f MARK -6); -t and -u take the family from the address');
  rejects('-a -f 1 -r 10.0.0.2 -g --tun-type ipip', 'rules.txt:1: --tun-type: tunnel options conflict with the forwarding method (they are for -i, LVS-Tun)');
  rejects('-a -f 1 -r 10.0.0.2 -i --tun-type gue --tun-port 6080', /^rules\.txt:1: --tun-type: tunnel type gue is not supported: the data plane encapsulates in a plain IPv4 \/ IPv6 header/);
  rejects('-a -f 1 -r 10.0.0.2 -i --tun-type gre', /^rules\.txt:1: --tun-type: tunnel type gre is not supported/);
  rejects('-a -f 1 -r 10.0.0.2 -i --tun-type vxlan', 'rules.txt:1: --tun-type: illegal tunnel type "vxlan" (ipvsadm knows ipip, gue and gre; lvs-xdp does ipip)');
  rejects('-a -f 1 -r 10.0.0.2 -i --tun-port 6080', "rules.txt:1: --tun-port: illegal 'tun-port' option with the 'ipip' tunnel type (ports and checksums belong to gue / gre, which lvs-xdp does not do)");
  rejects('-a -f 1 -r 10.0.0.2 -i --tun-type ipip --tun-csum', "rules.txt:1: --tun-csum: illegal 'tun-csum' option with the 'ipip' tunnel type (ports and checksums belong to gue / gre, which lvs-xdp does not do)");
  rejects('-A -t 10.0.0.1:80 -s sh -w 1', 'rules.txt:1: -w: not valid with -A');
  rejects('-A -t 10.0.0.1:80 -s sh -a', 'rules.txt:1: -a: only one command per rule (already -A)');
  rejects('-t 10.0.0.1:80 -s sh', 'rules.txt:1: no command (one of -A -E -D -C -a -e -d)');
  rejects('-L -n', 'rules.txt:1: -L: not a rule command (rules may only use -A -E -D -C -a -e -d)');
  rejects('-A -t 10.0.0.1:80 -s sh --frobnicate', 'rules.txt:1: --frobnicate: unknown option');
  rejects('-A -t 10.0.0.1:80 -s sh extra', 'rules.txt:1: unexpected argument "extra"');
  rejects('-A -t 10.0.0.1:80 -s', 'rules.txt:1: -s: needs a value');
  rejects("-A -t '10.0.0.1:80 -s sh", 'rules.txt:1: unterminated single quote');
  rejects('-A -t 10.0.0.1 -s sh', 'rules.txt:1: -t: no port given for a non-persistent service (ipvsadm: "Zero port specified"); use VIP:PORT, or VIP:0 to take every port');
  rejects('-A -u [2001:db8::1] -s sh', 'rules.txt:1: -u: no port given for a non-persistent service (ipvsadm: "Zero port specified"); use VIP:PORT, or VIP:0 to take every port');
  rejects('-Aq -t 10.0.0.1:80 -s sh', 'rules.txt:1: -q: unknown option');
  rejects('-a -t 10.0.0.1:80 -r 192.168.1.10 -gw', 'rules.txt:1: -w: needs a value');
  rejects(`${A}-a -t 10.0.0.1:80 -r 192.168.1.10 -w -1`, 'rules.txt:2: -w: weight -1 out of range 0..65535');
});

test('bundled short options and attached values, as popt reads them', () => {
  const svc = { protocol: 'tcp', vip: '10.0.0.1', port: 80 } as const;
  assert.deepEqual(parseRule(['-At', '10.0.0.1:80', '-s', 'mh']), { op: 'add-service', service: { ...svc, scheduler: 'mh', flags: [], ops: false } });
  assert.deepEqual(parseRule(['-At10.0.0.1:80', '-smh']), parseRule(['-A', '-t', '10.0.0.1:80', '-s', 'mh']));
  assert.deepEqual(parseRule(['-a', '-t', '10.0.0.1:80', '-r', '192.168.1.10', '-gw', '2']),
    { op: 'add-server', service: svc, realserver: { address: '192.168.1.10', port: 80, weight: 2, method: 'dr' } });
  assert.deepEqual(parseRule(['-at', '10.0.0.1:80', '-r192.168.1.10', '-iw3']),
    { op: 'add-server', service: svc, realserver: { address: '192.168.1.10', port: 80, weight: 3, method: 'tun' } });
  // A value is never read as options, even when it starts with a dash.
  assert.throws(() => parseRule(['-a', '-t', '10.0.0.1:80', '-r', '192.168.1.10', '-w', '-gi']), /weight "-gi" is not a number/);
  assert.deepEqual(expandShortOptions(['-Lnt', '10.0.0.1:80', '--mac', '-x', '-p300', '-Lq']), ['-L', '-n', '-t', '10.0.0.1:80', '--mac', '-x', '-p', '300', '-L', '-q']);
  // ipvsadm's all-ports service: no port with persistence (as before), or VIP:0 explicitly.
  assert.equal(restore('-A -t 10.0.0.1:0 -s sh\n').services[0]!.port, 0);
});

test('option forms: long, =value, attached short values, quotes, -p with and without a value', () => {
  const a = parseRule(['ipvsadm', '--add-service', '--udp-service=10.0.0.1:53', '-swrr', '-p', '-o']);
  assert.deepEqual(a, { op: 'add-service', service: { protocol: 'udp', vip: '10.0.0.1', port: 53, scheduler: 'wrr', flags: [], ops: true, persistence: { timeout: 300, netmask: '255.255.255.255' } } });
  const b = parseRule(['-A', '-t', '10.0.0.1:80', '-s', 'sh', '-p', '120']);
  assert.equal(b.op === 'add-service' && b.service.persistence?.timeout, 120);
  const c = parseRule(['-A', '-t', '10.0.0.1', '-s', 'sh', '-p900']);
  assert.ok(c.op === 'add-service' && c.service.port === 0 && c.service.persistence?.timeout === 900);
  assert.deepEqual(parseRule(['-C']), { op: 'clear' });
  assert.deepEqual(parseRule(['-d', '-t', '10.0.0.1:80', '-r', '192.168.1.1'], 'x:1'),
    { op: 'delete-server', service: { protocol: 'tcp', vip: '10.0.0.1', port: 80 }, address: '192.168.1.1', location: 'x:1' });
  assert.deepEqual(tokenize(`-A  -t "10.0.0.1:80" -s 'm'h`), ['-A', '-t', '10.0.0.1:80', '-s', 'mh']);
  assert.deepEqual(tokenize(`-b ''`), ['-b', '']);
});

test('--table-size (lvs-xdp extension) on -A / -E: saved by -S, kept by an -E without it, checked', () => {
  const cfg = restore('-A -t 10.0.0.1:80 -s mh --table-size 4093\n-a -t 10.0.0.1:80 -r 192.168.1.1 --mac 02:00:00:00:00:01');
  assert.equal(cfg.services[0]!.tableSize, 4093);
  const saved = formatSave(cfg);
  assert.equal(saved, '-A -t 10.0.0.1:80 -s mh --table-size 4093\n-a -t 10.0.0.1:80 -r 192.168.1.1:80 -g -w 1 --mac 02:00:00:00:00:01\n');
  assert.equal(formatSave(restore(saved)), saved, 'save -> restore -> save');
  assert.equal(restore(`${saved}-E -t 10.0.0.1:80 -s sh`).services[0]!.tableSize, 4093, '-E without --table-size keeps it');
  assert.equal(restore(`${saved}-E -t 10.0.0.1:80 -s sh --table-size=251`).services[0]!.tableSize, 251);
  assert.equal(restore('-A -t 10.0.0.1:80 -s mh').services[0]!.tableSize, undefined, 'none: the default follows the realservers');
  rejects('-A -t 10.0.0.1:80 -s mh --table-size 1000', 'rules.txt:1: --table-size: table size "1000" is not one of 251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 65537, 131071');
  rejects('-A -t 10.0.0.1:80 -s mh\n-a -t 10.0.0.1:80 -r 192.168.1.1 --table-size 251', /rules\.txt:2: --table-size: /);
});

test('-C clears services; -E resets persistence it does not repeat (as ipvsadm)', () => {
  const cfg = restore('-A -t 10.0.0.1:80 -s sh -p 60\n-a -t 10.0.0.1:80 -r 192.168.1.1 --mac 02:00:00:00:00:01\n-E -t 10.0.0.1:80 -s mh\n-e -t 10.0.0.1:80 -r 192.168.1.1 -i');
  assert.equal(formatSave(cfg), '-A -t 10.0.0.1:80 -s mh\n-a -t 10.0.0.1:80 -r 192.168.1.1:80 -i -w 1 --tun-type ipip --mac 02:00:00:00:00:01\n');
  assert.equal(formatSave(restore('-A -t 10.0.0.1:80 -s sh\n-C')), '');
  const input = { services: [], settings: { hashSeed: 5 } };
  assert.deepEqual(applyCommands(input, [{ op: 'clear' }]), input);
  assert.deepEqual(input.services, [], 'input untouched');
});

test('save -> restore -> save is a fixed point for random rule sets (fast-check)', () => {
  const octet = fc.integer({ min: 1, max: 254 });
  const svcArb = fc.record({
    proto: fc.constantFrom('-t', '-u'),
    vip: octet,
    port: fc.constantFrom(0, 53, 80, 443),
    sched: fc.constantFrom('mh', 'sh', 'dh', 'rr', 'wrr'),
    persist: fc.option(fc.record({ t: fc.integer({ min: 1, max: 100000 }), m: fc.integer({ min: 0, max: 32 }) })),
    reals: fc.uniqueArray(fc.record({ host: octet, tun: fc.boolean(), w: fc.integer({ min: 0, max: 65535 }) }), { selector: (r) => r.host, maxLength: 5 }),
  });
  fc.assert(fc.property(fc.uniqueArray(svcArb, { selector: (s) => `${s.proto}${s.vip}${s.port}`, maxLength: 6 }), (svcs) => {
    const lines: string[] = [];
    for (const s of svcs) {
      const svc = `${s.proto} 10.0.0.${s.vip}:${s.port}`;
      lines.push(`-A ${svc} -s ${s.sched}${s.persist ? ` -p ${s.persist.t} -M ${s.persist.m}` : ''}`);
      for (const r of s.reals) lines.push(`-a ${svc} -r 192.168.0.${r.host} ${r.tun ? '-i' : '-g'} -w ${r.w}`);
    }
    const once = formatSave(restore(lines.join('\n')));
    assert.equal(formatSave(restore(once)), once);
  }));
});

test('-m (LVS-NAT): the realserver port may differ; -S and -L print it as ipvsadm does (Masq)', () => {
  const cfg = validateConfig(restore([
    '-A -t 10.0.0.1:80 -s mh', '-a -t 10.0.0.1:80 -r 172.16.0.2:8080 -m -w 2', '-a -t 10.0.0.1:80 -r 172.16.0.3 -m',
    '-A -u 10.0.0.1:0 -s sh -p', '-a -u 10.0.0.1:0 -r 172.16.0.2 --masquerading',
    '-A -t [2001:db8::1]:443 -s mh', '-a -t [2001:db8::1]:443 -r [2001:db8:1::2]:8443 -m',
  ].join('\n')));
  const rs = cfg.services.find((s) => s.port === 80)!.realservers;
  assert.deepEqual(rs.map((r) => [r.method, r.port]), [['nat', 8080], ['nat', 80]]);
  const saved = formatSave(cfg);
  assert.match(saved, /^-a -t 10\.0\.0\.1:80 -r 172\.16\.0\.2:8080 -m -w 2$/m);
  assert.match(saved, /^-a -u 10\.0\.0\.1:0 -r 172\.16\.0\.2:0 -m -w 1$/m);
  assert.match(saved, /^-a -t \[2001:db8::1\]:443 -r \[2001:db8:1::2\]:8443 -m -w 1$/m);
  assert.equal(formatSave(validateConfig(restore(saved))), saved, 'save -> restore -> save');
  assert.match(formatList(cfg, { version: 'x', tableSizeLabel: 1 }), /\n  -> 172\.16\.0\.2:8080 {14}Masq {4}2 {6}0/);
});
