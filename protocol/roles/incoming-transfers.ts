import type { PullResult } from '../proxy/puller'

export interface TransferProgress {
  bytes: number
  total: number
  reused: number
  rateBytesPerSecond: number
}

/** The transfers this site's proxies are pulling now (in memory: a restart resumes from the files on disk). */
export class IncomingTransfers {
  /** By destination token: a second Initiate transfer joins the running pull. */
  readonly pulls = new Map<string, Promise<PullResult>>()
  /** By VM id: `fedvm site status` shows it while they run. */
  readonly progress = new Map<string, TransferProgress>()
  /** Pulls started per destination token (for the log: which attempt failed, and why). */
  readonly attempts = new Map<string, number>()
}
