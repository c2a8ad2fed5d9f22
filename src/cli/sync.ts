/**
 * `lvs-xdp sync flush`: sends the whole connection table (connections and persistence
 * templates) to the sync peers now, through the master daemon's group, port and peers, and
 * returns once every datagram is handed to the kernel. A planned switchover runs it on the active
 * director just before the VIPs move (README "Connection sync"): the peer then holds every live
 * connection, not only those the data plane reported since it started listening.
 */
import { Command } from 'commander';
import { LvsError, ExitCode } from '../errors.js';
import { runningSyncDaemons } from '../sync/state.js';
import { SyncSender } from '../sync/transport.js';
import { dumpEntries } from '../sync/dump.js';
import { withStateOptions, openDirector, type StateOpts } from './common.js';

export function syncCommand(): Command {
  const sync = new Command('sync').description('connection sync (IPVS protocol) of lvs-xdp run: see also -L --daemon');
  sync.addCommand(withStateOptions(new Command('flush'))
    .description('send the whole connection table to the sync peers now (before a planned switchover)')
    .action(async (o: StateOpts) => {
      const d = openDirector(o);
      try {
        const master = runningSyncDaemons(d.paths.stateDir).find((x) => x.role === 'master' && !x.error);
        if (!master) {
          throw new LvsError('no master sync daemon runs: start one in lvs-xdp run (settings.sync, or lvs-xdp --start-daemon master)', 'NO_SYNC_MASTER', ExitCode.STATE);
        }
        const dump = dumpEntries(d.config, d.connections());
        const sender = await SyncSender.open({
          interface: master.mcastInterface, syncid: master.syncid, group: master.mcastGroup, port: master.mcastPort, ttl: master.mcastTtl,
          maxLen: master.syncMaxlen, peers: master.peers,
        });
        try {
          const messages = dump.conns.length ? await sender.send(dump.conns) : 0;
          const conns = dump.conns.length - dump.templates;
          const to = sender.destinations.map((x) => `${x.address.includes(':') ? `[${x.address}]` : x.address}:${x.port}`).join(', ');
          console.log(`sent ${conns} connection entries${dump.templates ? ` and ${dump.templates} templates` : ''} in ${messages} message${messages === 1 ? '' : 's'} to ${to}`
            + (sender.stats.sendErrors ? ` (${sender.stats.sendErrors} datagrams failed)` : ''));
          if (sender.stats.sendErrors) process.exitCode = ExitCode.FAILURE;
        } finally {
          sender.close();
        }
      } finally {
        d.close();
      }
    }));
  return sync;
}
