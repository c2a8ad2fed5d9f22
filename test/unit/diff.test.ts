/** diffConfig ordering and fields, table shares that move, formatDiff text and data. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diffConfig, formatDiff, tableMovesFor } from '../../src/diff/index.js';
import { applyCommands, parseRules } from '../../src/ipvsadm/index.js';
import { emptyConfig, type DirectorConfig } from '../../src/model/types.js';

const rules = (text: string): DirectorConfig => applyCommands(emptyConfig(), parseRules(text, 't'));

const running = rules(`
-A -t 10.0.0.1:80 -s mh
-a -t 10.0.0.1:80 -r 192.168.1.10 -w 1
-a -t 10.0.0.1:80 -r 192.168.1.11 -w 1
-a -t 10.0.0.1:80 -r 192.168.1.12 -w 1
-a -t 10.0.0.1:80 -r 192.168.1.13 -w 1
-A -u 10.0.0.2:53 -s sh
-a -u 10.0.0.2:53 -r 192.168.1.20
-A -t 10.0.0.9:443 -s rr
`);

const desired = rules(`
-A -t 10.0.0.1:80 -s mh -b mh-port
-a -t 10.0.0.1:80 -r 192.168.1.10 -w 0
-a -t 10.0.0.1:80 -r 192.168.1.11 -w 1
-a -t 10.0.0.1:80 -r 192.168.1.12 -w 1
-a -t 10.0.0.1:80 -r 192.168.1.14 -i -w 2
-A -t [2001:db8::1]:80 -s sh -p 60
-a -t [2001:db8::1]:80 -r 2001:db8::10
-A -t 10.0.0.9:443 -s rr
`);

test('changes are ordered: settings, removed, added (with realservers), edited', () => {
  const changes = diffConfig({ ...running, settings: { hashSeed: 1 } }, { ...desired, settings: { hashSeed: 2, tunnel: { mtu: 1400 } } });
  assert.deepEqual(changes.map((c) => `${c.kind} ${'service' in c ? c.service : ''} ${'realserver' in c ? c.realserver : ''}`.trim()), [
    'settings-edited',
    'service-removed udp 10.0.0.2:53',
    'service-added tcp [2001:db8::1]:80',
    'realserver-added tcp [2001:db8::1]:80 2001:db8::10',
    'service-edited tcp 10.0.0.1:80',
    'realserver-removed tcp 10.0.0.1:80 192.168.1.13',
    'realserver-added tcp 10.0.0.1:80 192.168.1.14',
    'realserver-edited tcp 10.0.0.1:80 192.168.1.10',
  ]);
  assert.deepEqual(changes[0], {
    kind: 'settings-edited',
    fields: [{ field: 'tunnel.mtu', from: undefined, to: 1400 }, { field: 'hashSeed', from: 1, to: 2 }],
  });
  assert.deepEqual(changes[4], { kind: 'service-edited', service: 'tcp 10.0.0.1:80', fields: [{ field: 'flags', from: [], to: ['mh-port'] }] });
  assert.deepEqual(changes[7], {
    kind: 'realserver-edited', service: 'tcp 10.0.0.1:80', realserver: '192.168.1.10', fields: [{ field: 'weight', from: 1, to: 0 }],
  });
});

test('no changes for equal configs, whatever the order of services and realservers', () => {
  const shuffled: DirectorConfig = {
    services: [...running.services].reverse().map((s) => ({ ...s, realservers: [...s.realservers].reverse() })),
  };
  assert.deepEqual(diffConfig(running, shuffled), []);
  assert.equal(formatDiff([]).text, 'No changes.\n');
});

test('table moves: share of slots whose realserver changes, only for kept services', () => {
  const moves = tableMovesFor(running, desired);
  assert.deepEqual([...moves.keys()].sort(), ['tcp 10.0.0.1:80', 'tcp 10.0.0.9:443']);
  assert.equal(moves.get('tcp 10.0.0.9:443'), 0);
  // .10 quiesced and .13 removed: their half of the slots must move; .14 (weight 2) changes the
  // claim order too, so Maglev moves some more of .11's and .12's slots, but far from all.
  const m = moves.get('tcp 10.0.0.1:80')!;
  assert.ok(m >= 0.5 && m < 0.75, String(m));
});

test('formatDiff: human text and JSON-able data', () => {
  const moves = new Map([['tcp 10.0.0.1:80', 0.5123], ['tcp 10.0.0.9:443', 0]]);
  const { text, data } = formatDiff(diffConfig(running, desired), moves);
  assert.equal(text, [
    '- service udp 10.0.0.2:53',
    '+ service tcp [2001:db8::1]:80 (sh, 1 realserver)',
    '    + realserver 2001:db8::10 (dr, weight 1)',
    '~ service tcp 10.0.0.1:80: flags none -> mh-port',
    '    - realserver 192.168.1.13',
    '    + realserver 192.168.1.14 (tun, weight 2)',
    '    ~ realserver 192.168.1.10: weight 1 -> 0',
    '    table: 51.2% of slots move to another realserver',
    '1 service(s) added, 1 removed, 1 edited; 2 realserver(s) added, 1 removed, 1 edited.',
    '',
  ].join('\n'));
  assert.deepEqual(JSON.parse(JSON.stringify(data)).tableMoves, { 'tcp 10.0.0.1:80': 0.5123 });
  assert.deepEqual(data.summary, { services: { added: 1, removed: 1, edited: 1 }, realservers: { added: 2, removed: 1, edited: 1 } });
});

test('service field changes are shown with readable values', () => {
  const a = rules('-A -u 10.0.0.2:53 -s sh -p 300');
  const b = rules('-A -u 10.0.0.2:53 -s dh -p 60 -M 24 -o');
  b.services[0]!.tableSize = 4093;
  const { text } = formatDiff(diffConfig(a, b));
  assert.equal(text.split('\n')[0],
    '~ service udp 10.0.0.2:53: scheduler sh -> dh, persistence 300s mask 255.255.255.255 -> 60s mask 255.255.255.0, ops false -> true, table-size default (1021) -> 4093');
});

test('a default Maglev size that moves with the realservers is shown as a table-size change; within a size it is not', () => {
  const pool = (n: number) => ['-A -t 10.0.0.1:80 -s mh', ...Array.from({ length: n }, (_, i) => `-a -t 10.0.0.1:80 -r 192.168.1.${i + 1} --mac 02:00:00:00:00:01`)].join('\n');
  const grow = diffConfig(rules(pool(10)), rules(pool(11)));
  assert.equal(formatDiff(grow).text.split('\n')[0], '~ service tcp 10.0.0.1:80: table-size default (1021) -> default (2039)');
  assert.deepEqual(grow[0], { kind: 'service-edited', service: 'tcp 10.0.0.1:80', fields: [{ field: 'tableSize', from: undefined, to: undefined, sizes: { from: 1021, to: 2039 } }] });
  assert.ok(!diffConfig(rules(pool(4)), rules(pool(5))).some((c) => c.kind === 'service-edited' && c.fields.length > 0), '4 -> 5 realservers: the same 1021 slots');
});
