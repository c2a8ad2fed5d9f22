/**
 * The director's side of connection sync, for src/sync/daemons.ts: the data plane's event ring
 * (src/sync/events.ts) on the master, inserts into the connection table and templates
 * (Director.insertSynced, src/sync/insert.ts) on the backup. `director()` is read at each use:
 * run replaces its Director object at every resync.
 */
import type { Director } from '../director/director.js';
import type { SyncDataPlane } from './daemons.js';
import { SyncEventReader } from './events.js';

export function directorSyncDataPlane(director: () => Director): SyncDataPlane {
  return {
    async openEvents(refreshS) {
      await director().setSyncEvents({ on: true, refreshS });
      return SyncEventReader.open(director());
    },
    async stopEvents() {
      await director().setSyncEvents({ on: false });
    },
    insert(conns) {
      const r = director().insertSynced(conns);
      return { inserted: r.conns + r.templates, skipped: r.skipped as Record<string, number> };
    },
  };
}
