/**
 * Watches a domain arriving live at this host through libvirt's own lifecycle events (`virsh event
 * --timestamp`, started once Prepare has made the incoming domain): a guest that resets or stops within
 * `windowMs` of resuming here is logged as such, with libvirt's words and how long after the resume (a stop
 * this host asked for, e.g. an abort destroying the arrived domain, is not).
 * Without it such a guest is only seen later, as a confirmed VM found shut off. A guest reset under
 * `on_reboot=restart` leaves the domain running (only the reboot event tells), under `on_reboot=destroy`
 * it shuts the domain off: both are reported. An incoming domain dropped before it resumed (an abort)
 * ends the watch quietly.
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import type { Socket } from 'node:net'
import { createInterface } from 'node:readline'

/** 'host-stopped': this host stopped it after the resume (an abort destroys the arrived domain), not reported. */
export type ArrivalOutcome = 'stayed' | 'reset' | 'stopped' | 'host-stopped' | 'gone' | 'not-resumed'

export interface ArrivalEvent {
  kind: 'resumed' | 'reset' | 'stopped' | 'other'
  /** libvirt's timestamp of the event (ms since the epoch), when the line carries one. */
  at: number | undefined
  /** libvirt's words, e.g. "Resumed Migrated", "Stopped Shutdown", "reboot". */
  text: string
}

const SETPRIV = '/usr/bin/setpriv'

/** libvirt's details of a stop the host asked for (destroy, save, a shutdown or reset by request of the host). */
const HOST_STOP = /Destroyed|Migrated|Saved|Snapshot|after host request/

const LINE = /^(?:(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d+)\+0000: )?event '([\w-]+)' for domain '[^']*'(?:: (.*))?$/

/** One line of `virsh event --timestamp` output, or undefined for a line that is no event. */
export function parseArrivalEvent (line: string): ArrivalEvent | undefined {
  const m = LINE.exec(line.trim())
  if (m === null) return undefined
  const at = m[1] === undefined ? undefined : Date.parse(`${m[1]}T${m[2]}Z`)
  const text = m[4] === undefined ? m[3] : m[4]
  if (m[3] === 'reboot') return { kind: 'reset', at, text }
  if (m[3] !== 'lifecycle') return { kind: 'other', at, text }
  const what = text.split(' ')[0]
  // Started Migrated / Resumed Migrated: Finish let the domain run here.
  if (what === 'Resumed' || (what === 'Started' && text.includes('Migrated'))) return { kind: 'resumed', at, text }
  if (what === 'Stopped' || what === 'Shutdown' || what === 'Crashed' || what === 'Undefined') return { kind: 'stopped', at, text }
  return { kind: 'other', at, text }
}

/**
 * What the events of one arrival mean, fed one at a time: before the resume, a stop means the incoming
 * domain was dropped ('gone'); after it, a reset or stop within the window is the outcome.
 */
export class ArrivalVerdict {
  private resumedAt: number | undefined
  outcome: ArrivalOutcome | undefined
  /** The report of a reset or stop after the resume. */
  report: string | undefined

  constructor (private readonly domain: string, private readonly windowMs: number) {}

  get resumed (): boolean { return this.resumedAt !== undefined }

  /** Feeds one event (`now`: the host's clock when the event carries no timestamp). */
  feed (event: ArrivalEvent, now: number): void {
    if (this.outcome !== undefined) return
    const at = event.at ?? now
    if (event.kind === 'resumed') { this.resumedAt ??= at; return }
    if (event.kind === 'other') return
    if (this.resumedAt === undefined) {
      if (event.kind === 'stopped') this.outcome = 'gone'
      return
    }
    const afterMs = at - this.resumedAt
    if (afterMs > this.windowMs) { this.outcome = 'stayed'; return }
    if (event.kind === 'stopped' && HOST_STOP.test(event.text)) { this.outcome = 'host-stopped'; return }
    this.outcome = event.kind
    this.report = event.kind === 'reset'
      ? `${this.domain} arrived live and was reset ${afterMs} ms after it resumed here (libvirt: reboot event)`
      : `${this.domain} arrived live and stopped ${afterMs} ms after it resumed here (libvirt: ${event.text}): its guest reset or shut itself down, the domain no longer runs`
  }
}

export interface ArrivalWatchOptions {
  /** virsh connection URI of this host's libvirtd. */
  uri: string
  domain: string
  /** Receives the report of a guest that reset or stopped within the window. */
  log: (line: string) => void
  /** How long after the resume a reset or stop counts as the arrival's. Default 5 s. */
  windowMs?: number
  /** The longest wait for the resume (a migration may take long); the watch then ends as 'not-resumed'. Default 1 h. */
  maxWaitMs?: number
  /** Sees every event as it comes (diagnostics; a test waits for its own first event to know virsh listens). */
  onEvent?: (event: ArrivalEvent) => void
}

/** Starts watching; `done` says how the arrival went, `stop()` ends the watch early (its virsh ends by PID). */
export function watchLiveArrival (o: ArrivalWatchOptions): { done: Promise<ArrivalOutcome>, stop: () => void } {
  const windowMs = o.windowMs ?? 5000
  const maxWaitMs = o.maxWaitMs ?? 3_600_000
  const verdict = new ArrivalVerdict(o.domain, windowMs)
  // virsh ends with this process (setpriv's parent-death signal, where util-linux has it: a SIGKILLed site
  // daemon leaves no watcher behind), and --timeout bounds it in any case.
  const virsh = ['virsh', '-c', o.uri, 'event', '--domain', o.domain, '--all', '--loop', '--timestamp', '--timeout', String(Math.ceil((maxWaitMs + windowMs) / 1000))]
  const [command, ...args] = existsSync(SETPRIV) ? [SETPRIV, '--pdeathsig', 'TERM', '--', ...virsh] : virsh
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'ignore'] })
  // The watch never keeps a process from exiting: a site stopping mid-window just stops watching.
  child.unref()
  ;(child.stdout as Socket).unref()
  let timer: NodeJS.Timeout | undefined
  const end = (): void => { clearTimeout(timer); if (child.exitCode === null && child.signalCode === null) child.kill() }
  timer = setTimeout(end, maxWaitMs).unref()
  const lines = createInterface({ input: child.stdout })
  lines.on('line', (line) => {
    const event = parseArrivalEvent(line)
    if (event === undefined) return
    o.onEvent?.(event)
    const wasResumed = verdict.resumed
    verdict.feed(event, Date.now())
    if (verdict.outcome !== undefined) { end(); return }
    if (!wasResumed && verdict.resumed) { clearTimeout(timer); timer = setTimeout(end, windowMs).unref() }
  })
  const done = new Promise<ArrivalOutcome>((resolve) => {
    child.once('close', () => {
      if (verdict.report !== undefined) o.log(verdict.report)
      resolve(verdict.outcome ?? (verdict.resumed ? 'stayed' : 'not-resumed'))
    })
    child.once('error', () => resolve('not-resumed'))
  })
  return { done, stop: end }
}
