/**
 * QEMU's downtime limit during a live migration, raised step by step toward the host's maximum (like
 * Nova's live_migration_downtime_steps and KubeVirt's ramp). QEMU stops the guest for the switchover as
 * soon as what is left to send fits in the limit at its measured rate; at the maximum (300 ms) and the
 * proxies' rate that happens right after the first memory pass, with megabytes still dirty, all sent
 * while the guest is paused. Starting small makes an idle-ish guest converge in one or two more passes
 * and stop with little left; a busy guest that does not converge sees the limit double every step, so
 * it still completes within the maximum a moment later. Pure: the caller feeds it job statistics and a
 * clock.
 */
import type { LiveProgress } from './live-progress'

/** The limit starts at the maximum divided by 2^STEPS and doubles each step: 300 ms → 4.7 ms, 9.4, …, 300. */
export const RAMP_STEPS = 6
/** QEMU recomputes its threshold (rate × limit) every 100 ms; a faster step would not be seen. */
export const RAMP_STEP_MS = 100

/**
 * Whether a domain may ramp: only under KVM (`<domain type='kvm'>`), never under TCG (`type='qemu'`).
 * With QEMU 7.2's TCG every dirty-page sync while the vCPUs run risks corrupting the guest, and the
 * ramp exists to add passes: on this project's TCG hosts, 0 of 249 arrivals with libvirt's usual 3
 * passes broke, against 73 of 214 with 4 or more, on a direct `virsh migrate` as much as on fedvm's path.
 */
export function rampAllowedFor (domainXml: string): boolean {
  return /^\s*(<\?xml[^>]*>\s*)?<domain\b[^>]*\btype=['"]kvm['"]/.test(domainXml)
}

export interface RampOptions {
  maxDowntimeMs: number
  /** When the migration started (the ramp's clock). */
  startedAtMs: number
  /** From the start, when the limit is at the maximum whatever the memory phase did (e.g. half the completion timeout). */
  fullByMs: number
  steps?: number
  stepMs?: number
}

export class DowntimeRamp {
  private readonly steps: number
  private readonly stepMs: number
  /** When the first memory pass was seen to have ended (pass ≥ 2); the steps count from there. */
  private rampFromMs: number | undefined

  constructor (private readonly o: RampOptions) {
    this.steps = o.steps ?? RAMP_STEPS
    this.stepMs = o.stepMs ?? RAMP_STEP_MS
  }

  /** The limit to give QEMU before the memory phase starts. */
  get startLimitMs (): number {
    return Math.max(1, Math.round(this.o.maxDowntimeMs / 2 ** this.steps))
  }

  /** How long the ramp takes once the first memory pass has ended. */
  get durationMs (): number {
    return this.steps * this.stepMs
  }

  /**
   * The limit for what the job statistics say at `nowMs`: the start limit during the disk copy and the
   * first memory pass (QEMU converges only after it anyway), doubling every step from the second pass
   * on, the maximum from `fullByMs` on.
   */
  limitAt (nowMs: number, p?: Pick<LiveProgress, 'phase' | 'iteration'>): number {
    if (nowMs - this.o.startedAtMs >= this.o.fullByMs) return this.o.maxDowntimeMs
    if (this.rampFromMs === undefined && p !== undefined && p.phase !== 'disks' && p.iteration >= 2) this.rampFromMs = nowMs
    if (this.rampFromMs === undefined) return this.startLimitMs
    const step = Math.floor((nowMs - this.rampFromMs) / this.stepMs)
    return step >= this.steps ? this.o.maxDowntimeMs : Math.max(this.startLimitMs, Math.round(this.o.maxDowntimeMs / 2 ** (this.steps - step)))
  }
}
