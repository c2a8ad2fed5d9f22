/** Model: address handling and validateConfig rules, asserted by message. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  canonicalAddress, canonicalMac, compareAddresses, familyOf, formatNetmask, parseNetmask, formatAddrPort,
} from '../../src/model/address.js';
import { serviceId, type DirectorConfig, type Realserver, type VirtualService } from '../../src/model/types.js';
import { validateConfig, checkConfig, persistencePrefix } from '../../src/model/validate.js';
import { ConfigError } from '../../src/model/config-error.js';

test('addresses: strict parsing and inet_ntop-style canonical text', () => {
  assert.equal(canonicalAddress('10.0.0.1'), '10.0.0.1');
  assert.equal(canonicalAddress('2001:DB8:0:0:0:0:0:1'), '2001:db8::1');
  assert.equal(canonicalAddress('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1');
  assert.equal(canonicalAddress('0:0:0:0:0:0:0:0'), '::');
  assert.equal(canonicalAddress('::1'), '::1');
  assert.equal(canonicalAddress('fe80::'), 'fe80::');
  assert.equal(canonicalAddress('2001:db8:1:1:1:1:0:1'), '2001:db8:1:1:1:1:0:1');
  assert.equal(canonicalAddress('::ffff:192.0.2.1'), '::ffff:192.0.2.1');
  assert.equal(canonicalAddress('::ffff:c000:201'), '::ffff:192.0.2.1');
  for (const bad of ['10.1', '010.0.0.1', '256.0.0.1', '10.0.0.1.', 'fe80::1%eth0', '1:2:3:4:5:6:7:8:9', '1::2::3',
    ':1::', 'host.example', '', '12345::', '1:2:3:4:5:6:7::8']) {
    assert.equal(canonicalAddress(bad), null, bad);
  }
  assert.equal(familyOf('2001:db8::1'), 6);
  assert.equal(familyOf('10.0.0.1'), 4);
  assert.equal(formatAddrPort('2001:db8::1', 80), '[2001:db8::1]:80');
  assert.ok(compareAddresses('10.0.0.2', '10.0.0.10') < 0);
  assert.ok(compareAddresses('255.0.0.1', '::1') < 0);
});

test('addresses: round trip through the canonical form (fast-check)', () => {
  fc.assert(fc.property(fc.ipV6(), (a) => {
    const c = canonicalAddress(a);
    assert.notEqual(c, null, a);
    assert.equal(canonicalAddress(c!), c);
  }));
  fc.assert(fc.property(fc.ipV4(), (a) => assert.equal(canonicalAddress(a), a)));
});

test('netmasks and MACs', () => {
  assert.equal(parseNetmask('255.255.255.0', 4), 24);
  assert.equal(parseNetmask('24', 4), 24);
  assert.equal(parseNetmask('/64', 6), 64);
  assert.equal(parseNetmask('ffff:ffff:ffff:ffff::', 6), 64);
  assert.match(String(parseNetmask('255.0.255.0', 4)), /not contiguous/);
  assert.match(String(parseNetmask('33', 4)), /out of range 0..32/);
  assert.match(String(parseNetmask('255.255.0.0', 6)), /IPv4 netmask 255.255.0.0 on an IPv6 service/);
  assert.equal(formatNetmask(24, 4), '255.255.255.0');
  assert.equal(formatNetmask(0, 4), '0.0.0.0');
  assert.equal(formatNetmask(64, 6), '64');
  assert.equal(canonicalMac('02-00-00-AA-bb-0A'), '02:00:00:aa:bb:0a');
  assert.equal(canonicalMac('02:00-00:aa:bb:0a'), null);
  assert.equal(canonicalMac('2:0:0:aa:bb:a'), null);
});

function rs(address: string, extra: Partial<Realserver> = {}): Realserver {
  return { address, port: 80, weight: 1, method: 'dr', ...extra };
}

function svc(extra: Partial<VirtualService> = {}): VirtualService {
  return { protocol: 'tcp', vip: '10.0.0.1', port: 80, scheduler: 'mh', flags: [], ops: false, realservers: [rs('192.168.1.10')], ...extra };
}

function cfg(...services: VirtualService[]): DirectorConfig {
  return { services };
}

function rejects(c: DirectorConfig, pattern: RegExp, limits = {}): void {
  assert.throws(() => validateConfig(c, limits), (e: unknown) => {
    assert.ok(e instanceof ConfigError, String(e));
    assert.match(e.message, pattern);
    return true;
  });
}

test('validateConfig canonicalises', () => {
  const out = validateConfig(cfg(svc({
    vip: '2001:DB8::0001', scheduler: 'mh', flags: ['mh-port', 'mh-fallback', 'mh-port'],
    persistence: { timeout: 300, netmask: 'ffff:ffff:ffff:ffff::' },
    realservers: [rs('2001:db8:0::a', { method: 'tun', mac: '02-00-00-00-00-0A', nextHop: 'FE80::1' })],
  })));
  const s = out.services[0]!;
  assert.equal(s.vip, '2001:db8::1');
  assert.deepEqual(s.flags, ['mh-fallback', 'mh-port']);
  assert.deepEqual(s.persistence, { timeout: 300, netmask: '64' });
  assert.equal(s.realservers[0]!.address, '2001:db8::a');
  assert.equal(s.realservers[0]!.mac, '02:00:00:00:00:0a');
  assert.equal(s.realservers[0]!.nextHop, 'fe80::1');
  assert.equal(serviceId(s), 'tcp [2001:db8::1]:80');
  assert.equal(persistencePrefix(s), 64);
  assert.equal(persistencePrefix(svc()), 32);
  const v4 = validateConfig(cfg(svc({ persistence: { timeout: 1, netmask: '/24' } })));
  assert.equal(v4.services[0]!.persistence!.netmask, '255.255.255.0');
});

test('validateConfig refuses every class of bad input, naming service, realserver and field', () => {
  rejects(cfg(svc({ vip: 'www.example.com' })), /^services\[0\]\.vip: service tcp www\.example\.com:80: "www\.example\.com" is not an IPv4 or IPv6 address/);
  rejects(cfg(svc({ port: 70000 })), /services\[0\]\.port: .*port 70000 out of range 0\.\.65535/);
  rejects(cfg(svc({ protocol: 'sctp' as 'tcp' })), /services\[0\]\.protocol: .*protocol "sctp" is not tcp or udp/);
  rejects(cfg(svc({ scheduler: 'lblcr' as 'mh' })), /services\[0\]\.scheduler: .*scheduler lblcr is not supported by the XDP data plane: it keeps a cache of destination address -> set of realservers .* \(supported: mh, sh, dh, rr, wrr, lc, wlc, sed, nq, twos, fo, ovf\)/);
  rejects(cfg(svc({ realservers: [rs('192.168.1.10', { upperThreshold: 3, lowerThreshold: 4 })] })), /realservers\[0\]\.lowerThreshold: .*lower threshold 4 is above the upper threshold 3/);
  rejects(cfg(svc({ realservers: [rs('192.168.1.10', { upperThreshold: -1 })] })), /realservers\[0\]\.upperThreshold: .*threshold -1 out of range 0\.\.2147483647/);
  rejects(cfg(svc({ scheduler: 'fancy' as 'mh' })), /unknown scheduler "fancy"/);
  rejects(cfg(svc({ flags: ['sh-port'] })), /services\[0\]\.flags: .*scheduler flag sh-port applies only to scheduler sh, not mh/);
  rejects(cfg(svc({ flags: ['flag-3' as 'sh-port'] })), /unknown scheduler flag "flag-3"/);
  rejects(cfg(svc({ persistence: { timeout: 0, netmask: '255.255.255.255' } })), /persistence timeout 0 out of range 1\.\.2678400/);
  rejects(cfg(svc({ persistence: { timeout: 300, netmask: '255.0.255.0' } })), /services\[0\]\.persistence: .*netmask: netmask 255\.0\.255\.0 is not contiguous/);
  rejects(cfg(svc({ ops: true })), /services\[0\]\.ops: .*one-packet scheduling \(ops\) is only for UDP services/);
  rejects(cfg(svc({ tableSize: 65536 })), /services\[0\]\.tableSize: .*table size 65536 is not one of 251, 509/);
  rejects(cfg(svc({ tableSize: 131071 })), /table size 131071 exceeds the maximum 65537/, { maxTableSize: 65537 });
  rejects(cfg(svc({ realservers: [rs('192.168.1.10', { weight: 70000 })] })),
    /^services\[0\]\.realservers\[0\]\.weight: service tcp 10\.0\.0\.1:80, realserver 192\.168\.1\.10: weight 70000 out of range 0\.\.65535$/);
  rejects(cfg(svc({ realservers: [rs('192.168.1.10', { weight: 1.5 })] })), /weight 1\.5 out of range/);
  rejects(cfg(svc({ realservers: [rs('192.168.1.10', { port: 8080 })] })),
    /realservers\[0\]\.port: .*port 8080 differs from the service port 80; DR and Tun forward to the service port/);
  rejects(cfg(svc({ port: 0, realservers: [rs('192.168.1.10', { port: 80 })] })), /port 80 differs from the service port 0/);
  rejects(cfg(svc({ realservers: [rs('192.168.1.10', { method: 'masq' as 'dr' })] })),
    /realservers\[0\]\.method: .*unknown forwarding method "masq" \(use dr, tun or nat\)/);
  rejects(cfg(svc({ port: 0, realservers: [rs('192.168.1.10', { method: 'nat', port: 8080 })] })),
    /realservers\[0\]\.port: .*port 8080 on an all-ports service: LVS-NAT keeps the client's destination port there/);
  rejects(cfg(svc({ realservers: [rs('2001:db8::10')] })),
    /realservers\[0\]\.address: .*LVS-DR cannot forward an IPv4 VIP to an IPv6 realserver \(only Tun may mix families\)/);
  rejects(cfg(svc({ realservers: [rs('192.168.1.10'), rs('192.168.1.10')] })),
    /realservers\[1\]\.address: .*duplicate realserver \(also realservers\[0\]\)/);
  rejects(cfg(svc(), svc()), /^services\[1\]: service tcp 10\.0\.0\.1:80: duplicate service \(also services\[0\]\)/);
  rejects(cfg(svc({ realservers: [rs('192.168.1.10', { mac: '02:00:00:00:00' })] })), /realservers\[0\]\.mac: .*is not a MAC address/);
  rejects(cfg(svc({ realservers: [rs('192.168.1.10', { nextHop: '192.168.1.1' })] })), /nextHop: .*applies only to Tun realservers/);
  rejects(cfg(svc({ realservers: [rs('192.168.1.10', { method: 'tun', nextHop: 'fe80::1' })] })), /next hop fe80::1 is IPv6 but the realserver is IPv4/);
  rejects(cfg(svc({ realservers: [rs('192.168.1.10', { ifname: 'a-very-long-interface' })] })), /ifname: .*not a valid interface name/);
  rejects(cfg(svc(), svc({ port: 81, realservers: [] })), /^services: 2 services exceed the limit of 1$/, { maxServices: 1 });
  rejects(cfg(svc({ realservers: [rs('192.168.1.10'), rs('192.168.1.11')] })), /2 realservers in total exceed the limit of 1/, { maxRealservers: 1 });
  rejects({ services: [], settings: { tunnel: { source4: '2001:db8::1', mtu: 10 } } },
    /settings\.tunnel\.source4: tunnel: "2001:db8::1" is not an IPv4 address\nsettings\.tunnel\.mtu: tunnel: mtu 10 out of range 68\.\.65535/);
});

test('Tun may mix families; port 0 services take port 0 realservers; weight 0 is fine', () => {
  const ok = validateConfig(cfg(
    svc({ realservers: [rs('2001:db8::10', { method: 'tun' }), rs('192.168.1.10', { weight: 0 })] }),
    svc({ port: 0, protocol: 'udp', ops: true, realservers: [rs('192.168.1.10', { port: 0 })] }),
  ));
  assert.equal(ok.services.length, 2);
});

test('checkConfig reports all problems with paths', () => {
  const { issues } = checkConfig(cfg(svc({ port: -1, realservers: [rs('x', { weight: -1 })] })));
  assert.deepEqual(issues.map((i) => i.path.join('.')), ['services.0.port', 'services.0.realservers.0.address', 'services.0.realservers.0.weight']);
});
