import Database from 'better-sqlite3'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { ReplayCache } from '../envelope/replay-cache'
import type { Manifest } from '../proxy/manifest'
import type { TokenRecord, TokenState, TokenStore } from '../proxy/token-record'
import type { TransferPlan } from '../proxy/transfer-plan'
import type { MigrationRecord, MigrationStore } from '../roles/migration-record'
import type { FormerLocation, LocationRecord, LocationStore, RouteRecord, RouteStore } from '../roles/records'

/**
 * How long a route outlives its token: a side left in doubt by a crash asks the Controller for the
 * outcome through the same chain, possibly long after the transfer's token expired.
 */
const ROUTE_KEEP_MS = 7 * 24 * 3600_000

/**
 * Where this site keeps what must survive a restart: the replay cache, where each VM it is
 * responsible for went (a local host or the partner it delegated to, nothing more), the transfer
 * tokens its proxies issued, the routes it forwards through as an Intermediary, and, as Controller,
 * its record and decision of every migration it ran.
 */
export class SiteState implements ReplayCache, LocationStore, RouteStore, TokenStore, MigrationStore {
  private readonly db: Database.Database
  private lastPurge = 0
  private readonly statements = new Map<string, Database.Statement>()

  constructor (stateDir: string) {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 })
    this.db = new Database(join(stateDir, 'site.db'))
    this.db.pragma('journal_mode = WAL')
    this.db.pragma('synchronous = NORMAL')
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS "seen_messages" ("sender" TEXT NOT NULL, "id" TEXT NOT NULL, "keep_until" INTEGER NOT NULL, PRIMARY KEY ("sender", "id"));
      CREATE TABLE IF NOT EXISTS "locations" ("vm_id" TEXT PRIMARY KEY, "kind" TEXT NOT NULL, "target" TEXT NOT NULL, "upstream" TEXT, "descriptor" TEXT NOT NULL, "version" TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS "tokens" ("token" TEXT PRIMARY KEY, "role" TEXT NOT NULL, "proxy" INTEGER NOT NULL, "vm_id" TEXT NOT NULL, "host_id" TEXT NOT NULL,
        "bound_to" TEXT NOT NULL, "descriptor" TEXT NOT NULL, "manifest" TEXT, "state" TEXT NOT NULL, "expires_at" INTEGER NOT NULL, "location_version" TEXT, "requester" TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS "former_locations" ("vm_id" TEXT NOT NULL, "kind" TEXT NOT NULL, "target" TEXT NOT NULL, "upstream" TEXT, "left_at" INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS "former_locations_vm" ON "former_locations" ("vm_id", "left_at");
      CREATE TABLE IF NOT EXISTS "routes" ("ref" TEXT PRIMARY KEY, "kind" TEXT NOT NULL, "vm_id" TEXT NOT NULL, "partner" TEXT NOT NULL, "partner_ref" TEXT NOT NULL,
        "requester" TEXT NOT NULL, "location_version" TEXT, "expires_at" INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS "tokens_state" ON "tokens" ("state");
      CREATE INDEX IF NOT EXISTS "routes_partner_ref" ON "routes" ("partner", "partner_ref");
      CREATE TABLE IF NOT EXISTS "migrations" ("id" TEXT PRIMARY KEY, "vm_id" TEXT NOT NULL, "via" TEXT NOT NULL, "offer_ref" TEXT NOT NULL,
        "source_via" TEXT NOT NULL, "source_token" TEXT NOT NULL, "decision" TEXT NOT NULL, "destination_settled" INTEGER NOT NULL,
        "source_settled" INTEGER NOT NULL, "upstream" TEXT, "descriptor" TEXT NOT NULL, "created_at" INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS "migrations_vm" ON "migrations" ("vm_id", "created_at");
    `)
    // Added after the first release: a state directory from before gets the column on open.
    for (const [table, column] of [['tokens', 'plan'], ['migrations', 'live'], ['tokens', 'transfer_key']]) {
      const columns = this.db.pragma(`table_info("${table}")`) as Array<{ name: string }>
      if (!columns.some((c) => c.name === column)) this.db.exec(`ALTER TABLE "${table}" ADD COLUMN "${column}" TEXT`)
    }
  }

  seenBefore (from: string, id: string, keepUntil: number): boolean {
    const now = Date.now()
    // Expired ids are purged at most once a second: the DELETE scans the table, which holds a
    // minute of message ids (the monitoring relay alone sends hundreds of requests a second).
    if (now - this.lastPurge >= 1000) {
      this.statement('DELETE FROM "seen_messages" WHERE "keep_until" < ?').run(now)
      this.lastPurge = now
    }
    const inserted = this.statement('INSERT OR IGNORE INTO "seen_messages" ("sender", "id", "keep_until") VALUES (?, ?, ?)').run(from, id, keepUntil)
    return inserted.changes === 0
  }

  location (vmId: string): LocationRecord | undefined {
    const row = this.statement('SELECT * FROM "locations" WHERE "vm_id" = ?').get(vmId) as Record<string, string> | undefined
    if (row === undefined) return undefined
    return { vmId: row.vm_id, kind: row.kind as LocationRecord['kind'], target: row.target, upstream: row.upstream ?? null, descriptor: JSON.parse(row.descriptor), version: row.version }
  }

  locations (): LocationRecord[] {
    const rows = this.statement('SELECT "vm_id" FROM "locations" ORDER BY "vm_id"').all() as Array<{ vm_id: string }>
    return rows.map((row) => this.location(row.vm_id)!)
  }

  setLocation (record: LocationRecord): void {
    const before = this.location(record.vmId)
    if (before !== undefined && (before.target !== record.target || before.upstream !== record.upstream)) this.remember(before)
    this.statement('INSERT OR REPLACE INTO "locations" ("vm_id", "kind", "target", "upstream", "descriptor", "version") VALUES (?, ?, ?, ?, ?, ?)')
      .run(record.vmId, record.kind, record.target, record.upstream, JSON.stringify(record.descriptor ?? null), record.version)
  }

  /** Forgets where a VM went, unless the record was rewritten since `version` (the VM came back meanwhile). */
  dropLocationIf (vmId: string, version: string): boolean {
    const before = this.location(vmId)
    const dropped = this.statement('DELETE FROM "locations" WHERE "vm_id" = ? AND "version" = ?').run(vmId, version).changes > 0
    if (dropped && before !== undefined) this.remember(before)
    return dropped
  }

  /**
   * Where a VM was before its record was replaced or dropped (newest first, since `since`): the
   * monitoring relay still routes deliveries queued along the old chain (tombstones).
   */
  formerLocations (vmId: string, since: number): FormerLocation[] {
    const rows = this.statement('SELECT * FROM "former_locations" WHERE "vm_id" = ? AND "left_at" >= ? ORDER BY "left_at" DESC, rowid DESC').all(vmId, since) as Array<Record<string, string | number | null>>
    return rows.map((row) => ({ kind: row.kind as LocationRecord['kind'], target: row.target as string, upstream: (row.upstream as string | null) ?? null, leftAt: row.left_at as number }))
  }

  /** Forgets former locations that left before `before` (their grace period is over). */
  dropFormerLocations (before: number): void {
    this.statement('DELETE FROM "former_locations" WHERE "left_at" < ?').run(before)
  }

  private remember (record: LocationRecord): void {
    this.statement('INSERT INTO "former_locations" ("vm_id", "kind", "target", "upstream", "left_at") VALUES (?, ?, ?, ?, ?)').run(record.vmId, record.kind, record.target, record.upstream, Date.now())
  }

  token (token: string): TokenRecord | undefined {
    const row = this.statement('SELECT * FROM "tokens" WHERE "token" = ?').get(token) as TokenRow | undefined
    return row === undefined ? undefined : tokenFromRow(row)
  }

  putToken (record: TokenRecord): void {
    this.statement(`INSERT OR REPLACE INTO "tokens" ("token", "role", "proxy", "vm_id", "host_id", "bound_to", "descriptor", "manifest", "state", "expires_at", "location_version", "requester", "plan", "transfer_key")
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(record.token, record.role, record.proxy, record.vmId, record.hostId, record.boundTo,
      JSON.stringify(record.descriptor ?? null), record.manifest === null ? null : JSON.stringify(record.manifest), record.state, record.expiresAt, record.locationVersion,
      record.requester, record.plan == null ? null : JSON.stringify(record.plan), record.transferKey == null ? null : JSON.stringify(record.transferKey))
  }

  /** A source token's plan with the chunk digests computed so far; the token's state stays as it is. */
  setTokenPlan (token: string, plan: TransferPlan): void {
    this.statement('UPDATE "tokens" SET "plan" = ? WHERE "token" = ?').run(JSON.stringify(plan), token)
  }

  /** The source's manifest, once the transfer hashed every chunk; the token's state stays as it is. */
  setTokenManifest (token: string, manifest: Manifest): void {
    this.statement('UPDATE "tokens" SET "manifest" = ? WHERE "token" = ?').run(JSON.stringify(manifest), token)
  }

  setTokenState (token: string, state: TokenState, manifest?: Manifest): void {
    if (manifest === undefined) this.statement('UPDATE "tokens" SET "state" = ? WHERE "token" = ?').run(state, token)
    else this.statement('UPDATE "tokens" SET "state" = ?, "manifest" = ? WHERE "token" = ?').run(state, JSON.stringify(manifest), token)
    // A transfer's keys serve only while it can still pull: an ended token keeps no private key.
    if (state === 'spent' || state === 'cancelled' || state === 'expired') this.statement('UPDATE "tokens" SET "transfer_key" = NULL WHERE "token" = ?').run(token)
  }

  /** Open tokens past their expiry (the sweeper undoes what they prepared). */
  expiredOpenTokens (now: number): TokenRecord[] {
    return (this.statement('SELECT * FROM "tokens" WHERE "state" = \'open\' AND "expires_at" < ?').all(now) as TokenRow[]).map(tokenFromRow)
  }

  /**
   * Tokens whose migration this site cannot finish alone: a destination's complete but unconfirmed
   * arrival, and a source VM held for leaving. Their Controller decides; the resolver asks it.
   */
  inDoubtTokens (): TokenRecord[] {
    return (this.statement('SELECT * FROM "tokens" WHERE ("role" = \'destination\' AND "state" = \'received\') OR ("role" = \'source\' AND "state" = \'open\')').all() as TokenRow[]).map(tokenFromRow)
  }

  /** Open source tokens for a VM: a new Forced migration supersedes them. */
  openSourceTokens (vmId: string): TokenRecord[] {
    return (this.statement('SELECT * FROM "tokens" WHERE "state" = \'open\' AND "role" = \'source\' AND "vm_id" = ?').all(vmId) as TokenRow[]).map(tokenFromRow)
  }

  route (ref: string): RouteRecord | undefined {
    const row = this.statement('SELECT * FROM "routes" WHERE "ref" = ?').get(ref) as RouteRow | undefined
    return row === undefined ? undefined : routeFromRow(row)
  }

  putRoute (record: RouteRecord): void {
    this.statement(`INSERT OR REPLACE INTO "routes" ("ref", "kind", "vm_id", "partner", "partner_ref", "requester", "location_version", "expires_at")
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)`).run(record.ref, record.kind, record.vmId, record.partner, record.partnerRef, record.requester, record.locationVersion, record.expiresAt)
  }

  /** Transfers this site prepared, or routed as Controller/Intermediary, for a VM and not yet expired. */
  sourceRoutes (vmId: string, requester: string, now: number): RouteRecord[] {
    return (this.statement('SELECT * FROM "routes" WHERE "kind" = \'source\' AND "vm_id" = ? AND "requester" = ? AND "expires_at" >= ?').all(vmId, requester, now) as RouteRow[]).map(routeFromRow)
  }

  /** The offer route this site made of `partner`'s offer `partnerRef` (the way back up from a Destination). */
  offerRouteTo (partner: string, partnerRef: string): RouteRecord | undefined {
    const row = this.statement('SELECT * FROM "routes" WHERE "kind" = \'offer\' AND "partner" = ? AND "partner_ref" = ?').get(partner, partnerRef) as RouteRow | undefined
    return row === undefined ? undefined : routeFromRow(row)
  }

  /** Forgets routes a week past their expiry (until then an in-doubt side may still ask its way up through them). */
  dropExpiredRoutes (now: number): void {
    this.statement('DELETE FROM "routes" WHERE "expires_at" < ?').run(now - ROUTE_KEEP_MS)
  }

  migration (id: string): MigrationRecord | undefined {
    const row = this.statement('SELECT * FROM "migrations" WHERE "id" = ?').get(id) as MigrationRow | undefined
    return row === undefined ? undefined : migrationFromRow(row)
  }

  migrationsOf (vmId: string): MigrationRecord[] {
    return (this.statement('SELECT * FROM "migrations" WHERE "vm_id" = ? ORDER BY "created_at" DESC, rowid DESC').all(vmId) as MigrationRow[]).map(migrationFromRow)
  }

  unsettledMigrations (): MigrationRecord[] {
    return (this.statement('SELECT * FROM "migrations" WHERE "destination_settled" = 0 OR "source_settled" = 0 ORDER BY "created_at", rowid').all() as MigrationRow[]).map(migrationFromRow)
  }

  putMigration (record: MigrationRecord): void {
    const before = this.migration(record.id)
    const write = (): void => {
      this.statement(`INSERT OR REPLACE INTO "migrations" ("id", "vm_id", "via", "offer_ref", "source_via", "source_token", "decision", "destination_settled", "source_settled", "upstream", "descriptor", "created_at", "live")
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(record.id, record.vmId, record.via, record.offerRef, record.sourceVia, record.sourceToken, record.decision,
        record.destinationSettled ? 1 : 0, record.sourceSettled ? 1 : 0, record.upstream, JSON.stringify(record.descriptor ?? null), record.createdAt, record.live ?? null)
    }
    if (before?.decision === record.decision) return write()
    // A decision is what both sides will act on: it reaches the disk (WAL fsynced) before anyone is told.
    this.db.pragma('synchronous = FULL')
    try {
      write()
    } finally {
      this.db.pragma('synchronous = NORMAL')
    }
  }

  close (): void {
    this.db.close()
  }

  /** A prepared statement, compiled once per SQL text: preparing costs more than running these small queries. */
  private statement (sql: string): Database.Statement {
    let statement = this.statements.get(sql)
    if (statement === undefined) {
      statement = this.db.prepare(sql)
      this.statements.set(sql, statement)
    }
    return statement
  }
}

type TokenRow = Record<string, string | number | null>

/** A row of "tokens" as a TokenRecord (one reading for the lookup by token and the lists). */
function tokenFromRow (row: TokenRow): TokenRecord {
  return {
    token: row.token as string,
    role: row.role as TokenRecord['role'],
    proxy: row.proxy as number,
    vmId: row.vm_id as string,
    hostId: row.host_id as string,
    boundTo: row.bound_to as string,
    descriptor: JSON.parse(row.descriptor as string),
    manifest: row.manifest === null ? null : JSON.parse(row.manifest as string),
    plan: row.plan == null ? null : JSON.parse(row.plan as string),
    transferKey: row.transfer_key == null ? null : JSON.parse(row.transfer_key as string),
    state: row.state as TokenState,
    expiresAt: row.expires_at as number,
    locationVersion: (row.location_version as string | null) ?? null,
    requester: row.requester as string,
  }
}

type RouteRow = Record<string, string | number | null>
type MigrationRow = Record<string, string | number | null>

/** A row of "migrations" as a MigrationRecord. */
function migrationFromRow (row: MigrationRow): MigrationRecord {
  return {
    id: row.id as string,
    vmId: row.vm_id as string,
    via: row.via as string,
    offerRef: row.offer_ref as string,
    sourceVia: row.source_via as string,
    sourceToken: row.source_token as string,
    decision: row.decision as MigrationRecord['decision'],
    destinationSettled: row.destination_settled === 1,
    sourceSettled: row.source_settled === 1,
    upstream: (row.upstream as string | null) ?? null,
    descriptor: JSON.parse(row.descriptor as string),
    createdAt: row.created_at as number,
    ...(row.live === 'prepared' || row.live === 'finishing' ? { live: row.live } : {}),
  }
}

/** A row of "routes" as a RouteRecord (one reading for the lookup by ref and the list). */
function routeFromRow (row: RouteRow): RouteRecord {
  return {
    ref: row.ref as string,
    kind: row.kind as RouteRecord['kind'],
    vmId: row.vm_id as string,
    partner: row.partner as string,
    partnerRef: row.partner_ref as string,
    requester: row.requester as string,
    locationVersion: (row.location_version as string | null) ?? null,
    expiresAt: row.expires_at as number,
  }
}
