import type Database from 'better-sqlite3'
import { PrimaryStore } from '../../../../protocol/primary/primary-store'
import { MonitoringRelay, type RelayOptions } from '../../../../protocol/relay/monitoring-relay'
import type { Teardownable } from '../../../support/teardownable'

/**
 * The relay of site-b on a real monitoring.db, with the location records and the next hop (`send`)
 * played by the test, its log events collected in `events`; quick to send (1 ms linger) and closed,
 * with its database, at teardown. `extra` sets what a test drives (the clock, the requeue poll).
 */
export function openTestRelay (t: Teardownable, db: Database.Database, parts: Pick<RelayOptions, 'state' | 'send'> & { events: Array<Record<string, unknown>> }, extra: Partial<RelayOptions> = {}): MonitoringRelay {
  const relay = new MonitoringRelay({
    siteId: 'site-b',
    db,
    state: parts.state,
    primary: new PrimaryStore(db),
    send: parts.send,
    log: (e) => parts.events.push(e),
    lingerMs: 1,
    tombstoneMs: 60_000,
    maxBatchBytes: 64 * 1024,
    ...extra,
  })
  t.teardown(async () => { await relay.close(); if (db.open) db.close() })
  return relay
}
