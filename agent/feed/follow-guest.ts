import type { StatsFrame } from '../../protocol/kpi-feed/frames'

/** What the agent holds for one VM: its cursor, and the guest database (epoch) it belongs to (none before the first stats). */
export interface CursorState {
  epoch?: string
  cursor: bigint
}

/** A cursor another host's agent left in the VM's folder when the VM's feed ended there. */
export interface Handover {
  epoch: string
  seq: bigint
}

export interface FollowDecision {
  epoch: string
  cursor: bigint
  /** The guest streams from another row than `cursor`: say hello again with it. */
  rehello: boolean
  /** Why the cursor moved, for the log; absent when it stayed. */
  reason?: string
}

/**
 * Keeps the cursor in step with the guest's database, from its `stats` (DESIGN.md Contract 2):
 * - a new epoch (the database was replaced) starts over from its acknowledged position (0 for a
 *   fresh database, or when the guest does not report one);
 * - the same epoch behind the cursor (the database was restored from a snapshot) resumes after
 *   the guest's last row;
 * - an acknowledged position ahead of the cursor means another host already took those rows (the
 *   VM migrated here, maybe back): continue after them, so every row reaches one host.
 * `streamingFrom` is the row the guest streams after on this connection (what the hello asked for)
 * for the first stats after a hello; for later stats, undefined (the cursor is where it streams).
 */
export function followGuest (state: CursorState, stats: StatsFrame, streamingFrom?: bigint, handover?: Handover): FollowDecision {
  const last = BigInt(stats.last)
  let acked = stats.acked === undefined ? undefined : BigInt(stats.acked)
  let handedOver = false
  // The Source host's agent's final cursor (feed-cursor.json in the VM's folder) knows acks that were
  // still in flight when the VM was saved: taken when it is for this database and further along.
  if (handover !== undefined && handover.epoch === stats.epoch && handover.seq <= last && (acked === undefined || handover.seq > acked)) {
    acked = handover.seq
    handedOver = true
  }
  let cursor = state.cursor
  let reason: string | undefined
  if (state.epoch !== undefined && state.epoch !== stats.epoch) {
    cursor = acked ?? 0n
    reason = `the guest's KPI database changed (epoch ${state.epoch} → ${stats.epoch}): following the new one after row ${cursor}`
  } else if (state.epoch !== undefined && last < state.cursor) {
    cursor = last
    reason = `the guest's KPI database went back from row ${state.cursor} to ${last} (restored?): following it from there`
  } else if (acked !== undefined && acked > state.cursor) {
    cursor = acked
    reason = state.epoch === undefined && state.cursor === 0n
      ? (handedOver ? `the previous host's agent handed over its cursor: continuing after row ${acked}` : undefined) // a VM new to this host: its resuming hello already asked for exactly this
      : `rows ${state.cursor + 1n}..${acked} were acknowledged by another host (the VM migrated here): continuing after row ${acked}`
  }
  return { epoch: stats.epoch, cursor, rehello: cursor !== (streamingFrom ?? state.cursor), ...(reason ? { reason } : {}) }
}
