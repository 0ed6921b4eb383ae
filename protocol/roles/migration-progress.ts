/**
 * How far each migration running at this site has got, whichever path moves it: the Destination's
 * pull for a cold transfer, the Source's libvirt job for a live one. Only amounts and rates: nothing
 * here names a host or a partner's internals, so it may travel to the Controller as it is.
 */
export interface MigrationProgress {
  path: 'cold' | 'live'
  /** cold: 'transfer' while files move; live: libvirt's 'disks', 'memory', 'switchover'; both end in 'done'. */
  phase: 'transfer' | 'disks' | 'memory' | 'switchover' | 'done'
  totalBytes: number
  remainingBytes: number
  rateBytesPerSecond: number
  etaMs?: number
  /** Live only: the memory pass (1 = first copy) and how fast the guest dirties pages. */
  iteration?: number
  dirtyPagesPerSecond?: number
  /** Wall time (ms since the epoch) of this report. */
  at: number
}

/** The newest progress per VM at this site; a migration's entry goes when it ends. */
export class ProgressBoard {
  private readonly entries = new Map<string, MigrationProgress>()

  report (vmId: string, progress: MigrationProgress): void {
    this.entries.set(vmId, progress)
  }

  get (vmId: string): MigrationProgress | undefined {
    return this.entries.get(vmId)
  }

  end (vmId: string): void {
    this.entries.delete(vmId)
  }

  list (): Array<{ vmId: string } & MigrationProgress> {
    return [...this.entries].map(([vmId, progress]) => ({ vmId, ...progress }))
  }
}
