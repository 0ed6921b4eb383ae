/**
 * When a TCG guest is paused for a live migration's switchover. QEMU 7.2's TCG loses guest writes
 * made while the vCPUs run after a second dirty-page sync: on this project's TCG hosts 0 of 249
 * arrivals broke when QEMU switched over at its first check (libvirt's count of memory passes 3:
 * the initial sync, the one at the end of the first pass, the final one with the guest paused),
 * against 73 of 214 with 4 or more passes (a kernel oops or panic within seconds of arriving), on a
 * direct `virsh migrate --live` as often as on fedvm's path. A guest that dirtied more in its first
 * pass than fits in the downtime limit would make QEMU go on copying while it runs. Instead the
 * Source pauses it as soon as the second pass shows (what Nova's live-migration-force-complete
 * does): QEMU then sends the rest with the guest stopped, nothing it sends can be dirtied again, and
 * the Destination resumes the guest at Finish. The price is a downtime above the limit for such a
 * guest, which the host logs; a corrupted guest is the alternative. KVM tracks dirty pages in the
 * kernel and keeps QEMU's own switchover.
 */
import type { LiveProgress } from './live-progress'

/** How often Perform reads the job statistics of a TCG domain: what is sent between the second sync and the pause is at risk. */
export const SWITCHOVER_POLL_MS = 20

/** Whether a sample of the running job shows QEMU past its first check with memory left to send while the guest runs. */
export function needsPausedSwitchover (p: Pick<LiveProgress, 'phase' | 'iteration'>): boolean {
  return p.phase === 'memory' && p.iteration >= 2
}
