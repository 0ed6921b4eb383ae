/**
 * A host-clock downtime probe: the guest prints `fedvm-tick N` on its serial console every few ms
 * (guest-image.ts, `fedvm.tick_ms`), the console is a unix socket QEMU listens on at each libvirtd,
 * and this reads both the Source's and the Destination's socket and stamps every line with the
 * host's monotonic clock. The guest's own clock stands still while it is paused, the host's does not:
 * the longest gap between lines around the switchover bounds the downtime from above (it includes
 * up to one tick interval and the host's scheduling), and the sequence numbers show a line lost
 * (e.g. the Destination's console read too late: QEMU drops console output no one reads).
 */
import { connect, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'

/** One tick line: its sequence number, when the host read it, and from which console. */
export interface Tick { seq: number, atMs: number, console: string }

export interface ProbeSummary {
  /** Lines seen in the window. */
  lines: number
  /**
   * From the Source console's last line to the Destination console's first: the switchover as the
   * host sees it (an upper bound of the downtime, by up to one tick interval and the host's scheduling).
   */
  switchoverGapMs: number | undefined
  /** The Destination's first sequence number minus the Source's last: 1 when no line was lost across. */
  switchoverSeqStep: number | undefined
  /** The longest gap between consecutive lines from either console, host clock (also outside the switchover). */
  maxGapMs: number | undefined
  /** When the longest gap began, from the window's start. */
  maxGapAtMs: number | undefined
  /** When the Destination's console was first read, from the window's start (its QEMU listens from Prepare on). */
  destinationReadFromMs: number | undefined
  /** Sequence numbers missing between the first and last line seen. */
  lost: number
  /** Sequence numbers seen more than once. */
  duplicates: number
}

const RETRY_MS = 2

export class ConsoleProbe {
  readonly ticks: Tick[] = []
  /** When each console's connection was made, host clock (performance.now()), by label. */
  readonly connectedAt = new Map<string, number>()
  /** Each console's text after its last newline. */
  private readonly unterminated = new Map<string, string>()
  private readonly sockets = new Set<Socket>()
  private readonly timers = new Set<NodeJS.Timeout>()
  private closed = false

  /**
   * Reads the console at `path` from as soon as it accepts a connection (a Destination's QEMU
   * creates its socket during Prepare) until it closes or the probe does. Not retried once read.
   */
  watch (path: string, label: string = path): void {
    const attempt = (): void => {
      if (this.closed) return
      const socket = connect(path)
      this.sockets.add(socket)
      let first = true
      socket.once('connect', () => this.connectedAt.set(label, performance.now()))
      socket.on('data', (data: Buffer) => {
        const atMs = performance.now()
        // The guest's UART sends a line byte by byte: one the pause cut in two ends on the other
        // console, so the first text here continues what another console left unterminated.
        let carried = ''
        if (first) {
          first = false
          for (const [other, text] of this.unterminated) if (other !== label) { carried += text; this.unterminated.delete(other) }
        }
        const lines = (carried + (this.unterminated.get(label) ?? '') + data.toString('latin1')).split('\n')
        this.unterminated.set(label, lines.pop() ?? '')
        for (const line of lines) {
          const m = /fedvm-tick (\d+)/.exec(line)
          if (m !== null) this.ticks.push({ seq: Number(m[1]), atMs, console: label })
        }
      })
      socket.once('error', () => {
        socket.destroy()
        this.sockets.delete(socket)
        if (this.closed) return
        const timer = setTimeout(() => { this.timers.delete(timer); attempt() }, RETRY_MS)
        this.timers.add(timer)
      })
      socket.once('close', () => this.sockets.delete(socket))
    }
    attempt()
  }

  /** Resolves once a tick arrives after now (the guest runs and its console is read). */
  async nextTick (timeoutMs: number): Promise<void> {
    const from = performance.now()
    const until = Date.now() + timeoutMs
    while (Date.now() < until) {
      if (this.ticks.some((t) => t.atMs > from)) return
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    throw new Error(`no console tick within ${timeoutMs} ms (is the guest booted with fedvm.tick_ms, its console a unix socket?)`)
  }

  close (): void {
    this.closed = true
    for (const timer of this.timers) clearTimeout(timer)
    for (const socket of this.sockets) socket.destroy()
  }

  /** The lines between two host-clock instants (performance.now()), the switchover between the consoles labelled `source` and `destination`. */
  summary (fromMs: number, toMs: number, source: string, destination: string): ProbeSummary {
    const seen = this.ticks.filter((t) => t.atMs >= fromMs && t.atMs <= toMs)
    const last = seen.filter((t) => t.console === source).pop()
    const first = seen.find((t) => t.console === destination)
    let maxGapMs: number | undefined
    let maxGapAtMs: number | undefined
    for (let i = 1; i < seen.length; i++) {
      const gap = seen[i].atMs - seen[i - 1].atMs
      if (maxGapMs === undefined || gap > maxGapMs) { maxGapMs = gap; maxGapAtMs = seen[i - 1].atMs - fromMs }
    }
    const seqs = [...new Set(seen.map((t) => t.seq))].sort((a, b) => a - b)
    const lost = seqs.length === 0 ? 0 : seqs[seqs.length - 1] - seqs[0] + 1 - seqs.length
    return {
      lines: seen.length,
      switchoverGapMs: last === undefined || first === undefined ? undefined : Math.round(first.atMs - last.atMs),
      destinationReadFromMs: this.connectedAt.has(destination) ? Math.round((this.connectedAt.get(destination) as number) - fromMs) : undefined,
      switchoverSeqStep: last === undefined || first === undefined ? undefined : first.seq - last.seq,
      maxGapMs: maxGapMs === undefined ? undefined : Math.round(maxGapMs),
      maxGapAtMs: maxGapAtMs === undefined ? undefined : Math.round(maxGapAtMs),
      lost,
      duplicates: seen.length - seqs.length
    }
  }
}
