/**
 * The VM folder: `vmDir/ID/` holds one VM's files, and these names mean the same to every part that
 * reads or writes it (the site's VM hosts, the host agent's discovery, the transfer proxies). Names
 * starting with a dot under vmDir are book-keeping, never VMs.
 */

/** The libvirt domain definition, dumped when the VM leaves and defined from at the Destination. */
export const DOMAIN_XML = 'domain.xml'
/** A suspended VM's memory (`virsh save`): the Destination resumes from it. */
export const SAVED_STATE = 'saved-state'
/** The VM descriptor (DESIGN.md Contract 3): the host agent follows only folders that have one. */
export const DESCRIPTOR = 'descriptor.json'
/** The host agent's final KPI feed cursor, written when the VM's feed ended; travels with the VM. */
export const FEED_CURSOR = 'feed-cursor.json'
/** The virtio-serial port guestfs serves the KPI feed on (DESIGN.md Contract 2). */
export const KPI_CHANNEL = 'org.fedvm.kpi.0'

/** Flat names only: no separators, no leading dot, nothing that could leave the VM's folder. */
const PLAIN_NAME = /^[A-Za-z0-9_][A-Za-z0-9._+-]{0,254}$/

/** A VM id or a file name inside a VM folder: a plain name that stays inside its folder. */
export function isSafeFileName (name: string): boolean {
  return PLAIN_NAME.test(name) && name !== '..' && !name.includes('..')
}
