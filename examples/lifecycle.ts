// An embedded director's lifecycle: attach, apply a plan, read counters, detach.
// Run as root: node lifecycle.js IFACE VIP RIP (RIP on a network connected to IFACE).
import { Director, LvsError, parseConfigText, formatSteps } from 'lvs-xdp';

const [iface = 'eth0', vip = '198.51.100.1', rip = '192.0.2.10'] = process.argv.slice(2);
const config = parseConfigText(JSON.stringify({
  services: [{ vip, port: 80, protocol: 'tcp', scheduler: 'mh', realservers: [{ address: rip, method: 'dr' }] }],
}), 'lifecycle.json');

try {
  // First attach loads and pins the program and maps; the pins outlive this process.
  const d = await Director.attach(iface, { mode: 'auto', preset: 'small' });
  try {
    const plan = d.plan(config, { steps: true });        // a dry run: the diff and its map writes
    console.log(`plan:\n${plan.text}\n${formatSteps(plan.steps ?? [])}`);
    const result = await d.apply(config);                 // the same change, written
    console.log(`applied: ${result.applied}`);
    const stats = d.readStats();                          // per-CPU counters, summed
    for (const s of stats.services) console.log(`service ${s.id}: ${s.conns} conns, ${s.packets} packets`);
    console.log(`fwd_dr ${stats.counters['fwd_dr']}, pass_not_vip ${stats.counters['pass_not_vip']}`);
  } finally {
    await d.detach(iface);                                // the last interface: removes every pin
  }
} catch (e) {
  if (!(e instanceof LvsError)) throw e;
  console.error(`${e.code}: ${e.message}${e.hint ? `\nhint: ${e.hint}` : ''}`);
  process.exitCode = e.exitCode;
}
