/**
 * The VMs this process is running the Controller for right now (in memory: after a restart there are
 * none, so an undecided record found then belongs to a Controller that died and is decided abort).
 */
export class ActiveMigrations {
  private readonly counts = new Map<string, number>()

  enter (vmId: string): void {
    this.counts.set(vmId, (this.counts.get(vmId) ?? 0) + 1)
  }

  leave (vmId: string): void {
    const count = (this.counts.get(vmId) ?? 1) - 1
    if (count <= 0) this.counts.delete(vmId)
    else this.counts.set(vmId, count)
  }

  has (vmId: string): boolean {
    return this.counts.has(vmId)
  }
}
