/**
 * What the protocol needs from a VM host, and nothing more. In this issue a VM is a directory of
 * files (dir-host.ts); the libvirt issue implements the same interface with real domains.
 * Every method is idempotent: the protocol retries.
 */
export interface VmFile {
  name: string
  size: number
  /** Where the proxy reads the file from; never sent to another site. */
  path: string
}

export interface VmHost {
  readonly id: string
  /** VMs on this host now (received ones included) and the most it takes. */
  capacity: () => Promise<{ used: number, max: number }>
  has: (vmId: string) => Promise<boolean>
  /** Stops the VM changing its files so they can be copied (a cold migration's first step). */
  prepareForLeaving: (vmId: string) => Promise<void>
  /** Undoes prepareForLeaving: the transfer failed or was cancelled and the VM stays and runs here. */
  stayHere: (vmId: string) => Promise<void>
  listFiles: (vmId: string) => Promise<VmFile[]>
  /** A directory for incoming files; it keeps what was written so far across restarts (resume). */
  receive: (vmId: string) => Promise<string>
  /** The received, verified files become the VM on this host. */
  confirm: (vmId: string) => Promise<void>
  /** Drops received files of a transfer that will not complete. */
  abandon: (vmId: string) => Promise<void>
  /** The VM now lives elsewhere: remove it from this host. */
  release: (vmId: string) => Promise<void>
}
