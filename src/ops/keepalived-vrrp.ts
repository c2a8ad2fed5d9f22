/**
 * keepalived's VRRP configuration for a pair of lvs-xdp directors (README "Active/standby with
 * keepalived (VRRP)"; `lvs-xdp announce keepalived-config`). Pure. keepalived only moves the VIPs
 * (vrrp_instance); lvs-xdp is the virtual_server part, so none is generated.
 */
import { isIP } from 'node:net';
import { ConfigError } from '../errors.js';

export interface KeepalivedInstance {
  name: string;
  vrid: number;
  /** use_vmac: the VIPs sit on a macvlan `vrrp.VRID` with the VRRP virtual MAC. */
  vmac: boolean;
  vips: string[];
}

export interface KeepalivedVrrpOptions {
  routerId: string;
  interface: string;
  priority: number;
  /** Seconds; VRRPv3 counts in centiseconds (0.01-40.95). */
  advertInt: number;
  instances: KeepalivedInstance[];
  /** false: nopreempt (a returning director stays backup until the master fails). */
  preempt: boolean;
  /** Seconds a starting director waits before it preempts (longer than run's resync with use_vmac). */
  preemptDelay?: number;
}

/** The VRRP virtual MAC of an instance (RFC 5798: 00:00:5e:00:01:VRID for IPv4, 00:00:5e:00:02:VRID for IPv6). */
export function vrrpVmac(vrid: number, family: 4 | 6): string {
  return `00:00:5e:00:0${family === 4 ? 1 : 2}:${vrid.toString(16).padStart(2, '0')}`;
}

/**
 * One instance per address family (a VRRPv3 instance carries one family), named VI_4 and VI_6,
 * with vrid and vrid + 1; an empty family gets none.
 */
export function instancesFor(vips: readonly string[], vrid: number, vmac: boolean, vrid6 = vrid + 1): KeepalivedInstance[] {
  const unique = [...new Set(vips)];
  const v4 = unique.filter((v) => isIP(v) === 4);
  const v6 = unique.filter((v) => isIP(v) === 6);
  return [
    ...(v4.length ? [{ name: 'VI_4', vrid, vmac, vips: v4 }] : []),
    ...(v6.length ? [{ name: 'VI_6', vrid: vrid6, vmac, vips: v6 }] : []),
  ];
}

function check(o: KeepalivedVrrpOptions): void {
  const bad = (field: string, what: string): never => {
    throw new ConfigError(what, { field });
  };
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(o.routerId)) bad('--router-id', `expected a name, got ${JSON.stringify(o.routerId)}`);
  if (!/^[A-Za-z0-9_.@-]{1,15}$/.test(o.interface)) bad('--interface', `expected an interface name, got ${JSON.stringify(o.interface)}`);
  if (!Number.isInteger(o.priority) || o.priority < 1 || o.priority > 254) bad('--priority', `expected an integer 1-254, got ${o.priority}`);
  if (!(o.advertInt >= 0.01 && o.advertInt <= 40.95) || Math.abs(Math.round(o.advertInt * 100) - o.advertInt * 100) > 1e-6) {
    bad('--advert-int', `expected seconds 0.01-40.95 in centiseconds (VRRPv3), got ${o.advertInt}`);
  }
  if (o.preemptDelay !== undefined && !(o.preemptDelay >= 0 && o.preemptDelay <= 1000)) bad('--preempt-delay', `expected seconds 0-1000, got ${o.preemptDelay}`);
  if (o.instances.length === 0) bad('vips', 'no VIP to move');
  const vrids = new Set<number>();
  for (const i of o.instances) {
    if (!Number.isInteger(i.vrid) || i.vrid < 1 || i.vrid > 255) bad('--vrid', `expected an integer 1-255, got ${i.vrid}`);
    if (vrids.has(i.vrid)) bad('--vrid', `${i.vrid} used twice`);
    vrids.add(i.vrid);
    const fam = new Set(i.vips.map((v) => isIP(v)));
    if (fam.has(0) || fam.size !== 1) bad('vips', `${i.name}: expected addresses of one family, got ${i.vips.join(' ')}`);
  }
}

/**
 * keepalived's configuration for one director: VRRPv3 (sub-second adverts, IPv6 VIPs), every
 * instance in one sync group (all VIPs move together: both directors forward every service, but a
 * client's VIPs should not be split), both directors start as BACKUP (the priority elects the master;
 * the preempt delay applies only to a BACKUP start).
 */
export function keepalivedVrrpConfig(o: KeepalivedVrrpOptions): string {
  check(o);
  const lines = [
    '# keepalived VRRP for an lvs-xdp director (lvs-xdp announce keepalived-config).',
    '# keepalived only moves the VIPs; lvs-xdp (attach + run) is the virtual_server part: its data',
    '# plane stays attached on both directors and forwards what reaches it (the master only).',
    'global_defs {',
    `  router_id ${o.routerId}`,
    '  vrrp_version 3               # sub-second advert_int, IPv6 VIPs',
    '  vrrp_garp_master_repeat 3    # the new master\'s gratuitous ARPs / unsolicited NAs',
    '  vrrp_garp_master_delay 1     # and once more 1 s later',
    '}',
    '',
    'vrrp_sync_group LVS_XDP {',
    `  group { ${o.instances.map((i) => i.name).join(' ')} }`,
    '}',
  ];
  for (const i of o.instances) {
    lines.push(
      '',
      `vrrp_instance ${i.name} {`,
      '  state BACKUP',
      `  interface ${o.interface}`,
      `  virtual_router_id ${i.vrid}`,
      `  priority ${o.priority}`,
      `  advert_int ${o.advertInt}`,
      ...(o.preempt ? [] : ['  nopreempt']),
      ...(o.preempt && o.preemptDelay ? [`${`  preempt_delay ${o.preemptDelay}`.padEnd(31)}# a starting director's run is up first (any vmac accepted: one resync)`] : []),
      ...(i.vmac ? [`${`  use_vmac vrrp.${i.vrid}`.padEnd(31)}# ${vrrpVmac(i.vrid, isIP(i.vips[0]!) === 6 ? 6 : 4)} (lvs-xdp accepts it within one resync of run)`] : []),
      '  virtual_ipaddress {',
      ...i.vips.map((v) => `    ${v}/${isIP(v) === 6 ? 128 : 32}`),
      '  }',
      '}',
    );
  }
  return `${lines.join('\n')}\n`;
}
