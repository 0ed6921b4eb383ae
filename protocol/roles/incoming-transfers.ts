import type { PullResult } from '../proxy/puller'

/**
 * The transfers this site's proxies are pulling now (in memory: a restart resumes from the files on
 * disk). How far each has got is on the site's ProgressBoard (migration-progress.ts).
 */
export class IncomingTransfers {
  /** By destination token: a second Initiate transfer joins the running pull. */
  readonly pulls = new Map<string, Promise<PullResult>>()
  /** Pulls started per destination token (for the log: which attempt failed, and why). */
  readonly attempts = new Map<string, number>()
}
