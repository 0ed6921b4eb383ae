/**
 * The Controller's record of one migration attempt (one chosen offer), kept in the site state
 * (site/site-state.ts) so a restart finds every migration it had not finished. libvirt's Confirm
 * phase is the model: the decision is written here, durably, before either side is told to act on it.
 *
 * - undecided: files may be moving; nobody runs the VM but the Source (prepared for leaving, not runnable).
 * - commit: dstat = sstat was agreed; the Destination is told to make the VM its own, the Source waits.
 * - committed: the Destination runs the VM; the Source is told to release its copy.
 * - abort: the Destination drops what it received (or refused to run it); the Source runs the VM again.
 */
export type MigrationDecision = 'undecided' | 'commit' | 'committed' | 'abort'

export interface MigrationRecord {
  id: string
  vmId: string
  /** Where Initiate transfer went: this site, or the partner whose offer it was (never further). */
  via: string
  /** The offer's ref as this site got it (the Destination's token, or the partner's route to it). */
  offerRef: string
  /** Where Forced migration went: this site (its own host or an intake), or the partner it delegated the VM to. */
  sourceVia: string
  /** The Source's token (the same string at every hop of the chain). */
  sourceToken: string
  decision: MigrationDecision
  /** The Destination has acted on the decision (made the VM its own, or dropped its files). */
  destinationSettled: boolean
  /** The Source has acted on the decision (released its copy, or runs the VM again), or was handed to the next offer. */
  sourceSettled: boolean
  /** This site's location record of the VM when the migration began: what the new one keeps. */
  upstream: string | null
  descriptor: unknown
  createdAt: number
  /**
   * A live migration (absent: cold). 'finishing' from the moment the Source is asked to Perform (the
   * Destination Finishes as soon as the Source says in-band that Perform is done) until the Source
   * answered that Perform failed or the Destination that Finish failed: the VM may run at the
   * Destination already, so an abort resumes the Source only once the Destination has dropped its copy.
   */
  live?: 'prepared' | 'finishing'
}

export interface MigrationStore {
  migration: (id: string) => MigrationRecord | undefined
  /** A VM's migration records, newest first. */
  migrationsOf: (vmId: string) => MigrationRecord[]
  /** Records one side or both have still to act on (a restart resumes them). */
  unsettledMigrations: () => MigrationRecord[]
  /** Writes the record; a change of decision is synced to disk before this returns. */
  putMigration: (record: MigrationRecord) => void
}

/** What a side still in doubt is told when it asks (the answer to migration-outcome). */
export type OutcomeDecision = 'commit' | 'abort' | 'pending'
