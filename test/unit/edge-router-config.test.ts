// examples/edge-router's own configuration: the shipped example parses, becomes lvs-xdp's LVS-DR
// services, and what lvs-xdp or the router refuses names the file and the field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ConfigError } from 'lvs-xdp';
import { readRouterConfig, parseRouterConfig, directorConfig } from '../../examples/edge-router/config.js';
import { repoRoot } from '../lib/paths.js';

test('router.example.json becomes LVS-DR services with the given weights', () => {
  const cfg = readRouterConfig(join(repoRoot(), 'examples', 'edge-router', 'router.example.json'));
  assert.equal(cfg.uplink, 'eth0');
  assert.deepEqual(cfg.http, { host: '127.0.0.1', port: 9180 });
  const d = directorConfig(cfg);
  assert.deepEqual(d.services.map((s) => [s.protocol, s.vip, s.port, s.scheduler, s.realservers.map((r) => [r.address, r.port, r.weight, r.method])]), [
    ['tcp', '203.0.113.80', 80, 'mh', [['198.51.100.10', 80, 1, 'dr'], ['198.51.100.11', 80, 2, 'dr']]],
    ['udp', '203.0.113.80', 53, 'sh', [['198.51.100.10', 53, 1, 'dr']]],
  ]);
});

test('a bad router configuration is a ConfigError naming the file and field', () => {
  const bad = (text: string, re: RegExp) => assert.throws(() => parseRouterConfig(text, 'r.json'), (e: unknown) => e instanceof ConfigError && re.test(e.message));
  bad('{', /^r\.json: not JSON/);
  bad('{"services": []}', /^r\.json: uplink: /);
  bad('{"uplink": "eth0", "services": [{"vip": "203.0.113.1", "port": 80, "scheduler": "lblc", "backends": ["10.0.0.1"]}]}', /services\[0\]\.scheduler/);
  bad('{"uplink": "eth0", "services": [{"vip": "203.0.113.1", "port": 80, "backends": []}]}', /services\[0\]\.backends/);
  // lvs-xdp's own validation: a weight above its maximum.
  bad('{"uplink": "eth0", "services": [{"vip": "203.0.113.1", "port": 80, "backends": [{"address": "10.0.0.1", "weight": 70000}]}]}', /^r\.json: .*weight/);
  assert.equal(parseRouterConfig('{"uplink": "eth0", "services": []}', 'r.json').services.length, 0);
});
