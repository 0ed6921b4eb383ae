/**
 * What Transfer verification compares for a live migration (dstat = sstat). A cold transfer's
 * status is the manifest of file digests; a live migration copies a running disk, so no digest
 * holds still. Each end reports instead what its own libvirtd says: the domain's UUID, each copied
 * disk's name and virtual size, and that libvirt counts the migration job as completed (the Source:
 * Perform's cookie carries the completed job's statistics; the Destination: its completed incoming
 * job). The two agree only when the same domain arrived whole at the other end.
 */
export interface LiveStatus {
  uuid: string
  disks: Array<{ name: string, bytes: number }>
  job: 'completed' | 'incomplete'
}

export function liveStatusesAgree (a: LiveStatus, b: LiveStatus): boolean {
  if (a.uuid !== b.uuid || a.job !== 'completed' || b.job !== 'completed' || a.disks.length !== b.disks.length) return false
  const sizes = new Map(b.disks.map((d) => [d.name, d.bytes]))
  return a.disks.every((d) => sizes.get(d.name) === d.bytes)
}

/** Perform's cookie holds `<statistics>` once QEMU completed the migration. */
export function performCompleted (cookie: Buffer): boolean {
  return /<statistics>[\s\S]*<downtime>\d+<\/downtime>[\s\S]*<\/statistics>/.test(cookie.toString('utf8'))
}
