import type { LiveDestination } from '../libvirt/live-destination'
import type { LiveOffer, LiveSource } from '../libvirt/live-source'
import type { ResourceOutcome, RunAction, RunState } from './vm-control'

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

/** What a VM needs of a host (the descriptor's `resources`); a field left out is not checked. */
export interface Demand {
  memoryMiB?: number
  vcpus?: number
}

export interface Capacity {
  /** VMs on this host now (received ones included) and the most it takes. */
  used: number
  max: number
  /** Memory and vCPUs not given to a VM yet; absent where the host does not count them (any VM fits). */
  free?: { memoryMiB: number, vcpus: number }
}

export interface VmHost {
  readonly id: string
  capacity: () => Promise<Capacity>
  /** A VM's own demand as this host defines it (a libvirt domain's memory and vCPUs); hosts that cannot tell leave it out. */
  demand?: (vmId: string) => Promise<Demand | undefined>
  has: (vmId: string) => Promise<boolean>
  /** Stops the VM changing its files so they can be copied (a cold migration's first step). */
  prepareForLeaving: (vmId: string) => Promise<void>
  /** Undoes prepareForLeaving: the transfer failed or was cancelled and the VM stays and runs here. */
  stayHere: (vmId: string) => Promise<void>
  listFiles: (vmId: string) => Promise<VmFile[]>
  /** A directory for incoming files; it keeps what was written so far across restarts (resume). */
  receive: (vmId: string) => Promise<string>
  /**
   * The received, verified files become the VM on this host. `descriptor` is the one the Migration
   * request carried: a host that keeps descriptors beside its VMs writes it where none travelled.
   */
  confirm: (vmId: string, descriptor?: unknown) => Promise<void>
  /** Drops received files of a transfer that will not complete. */
  abandon: (vmId: string) => Promise<void>
  /** The VM now lives elsewhere: remove it from this host. */
  release: (vmId: string) => Promise<void>
  /** The Control interface (vm-control.ts). The descriptor in the VM's folder; undefined when it has none. */
  readDescriptor?: (vmId: string) => Promise<unknown>
  /** Rewrites the VM's descriptor atomically; the host agent applies it at its next look at the folder. */
  writeDescriptor?: (vmId: string, descriptor: unknown) => Promise<void>
  /** Changes the running VM's memory and vCPUs where the hypervisor can, saying for each whether it did. */
  applyResources?: (vmId: string, demand: Demand) => Promise<ResourceOutcome>
  /** Shuts the VM down, starts, suspends or resumes it (RunStateRefused when its state does not allow it); the state after. */
  changeRunState?: (vmId: string, action: RunAction) => Promise<RunState>
  /**
   * Live migration (hosts whose hypervisor can): whether the VM leaves live now (the host leaves by
   * "live" and the VM runs). Otherwise it takes the cold path (prepareForLeaving).
   */
  leavesLive?: (vmId: string) => Promise<boolean>
  /** Begin on this host's hypervisor: the VM keeps running; stayHere and release end it like a cold leaving. */
  beginLiveLeaving?: (vmId: string, migrationId: string) => Promise<LiveSource>
  /** Prepare on this host's hypervisor: the disks are created empty; abandon undoes it, confirm makes the arrived VM this host's. */
  prepareLiveArrival?: (vmId: string, migrationId: string, offer: LiveOffer) => Promise<LiveDestination>
}
