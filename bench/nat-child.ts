/**
 * Runs inside bench/nat.ts's namespace: c0 (a veth) with the benchmark's client 198.51.100.7
 * resolved on it, forwarding on (the FIB answers only for a forwarding interface), then the
 * data plane bench with its NAT cases. Prints one JSON line with the results.
 */
import { execFileSync } from 'node:child_process';
import { ifIndex } from '../src/native/index.js';
import { runDataplaneBench } from './dataplane.js';

const opts = JSON.parse(process.argv[2] ?? '{}') as { rounds: number; perRound: number };
const ip = (...a: string[]) => execFileSync('ip', a, { stdio: ['ignore', 'ignore', 'inherit'] });
ip('link', 'set', 'lo', 'up');
ip('link', 'add', 'c0', 'address', '02:00:00:00:0c:01', 'type', 'veth', 'peer', 'name', 'c1');
ip('link', 'set', 'c0', 'up');
ip('link', 'set', 'c1', 'up');
ip('addr', 'add', '198.51.100.1/24', 'dev', 'c0');
ip('neigh', 'replace', '198.51.100.7', 'lladdr', '02:00:00:00:00:c7', 'dev', 'c0', 'nud', 'permanent');
execFileSync('sh', ['-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward']);
const results = await runDataplaneBench({ ...opts, nat: { egress: ifIndex('c0'), egressMac: '02:00:00:00:0c:01' } });
console.log(JSON.stringify(results));
