import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '../../../support/free-port'
import type { Teardownable } from '../../../support/teardownable'

/** A raw sample as Prometheus holds it: labels, data time (ms) and value. */
export interface StoredSample {
  labels: Record<string, string>
  ts: number
  value: number
}

/**
 * A real Prometheus (Debian's 2.42) taking remote writes, with a 1 h out-of-order window (KPI
 * history arrives out of time order across VMs and after an outage). Its TSDB folder outlives a
 * SIGKILL, so a test can restart it on the same port and data. Stopped by PID at teardown.
 */
export class PrometheusReceiver {
  private child: ChildProcess | undefined
  private stderr = ''

  private constructor (private readonly dir: string, readonly port: number) {}

  /** `targets`: /metrics endpoints (HOST:PORT) it also scrapes, every second. */
  static async start (t: Teardownable, targets: string[] = []): Promise<PrometheusReceiver> {
    const dir = await mkdtemp(join(tmpdir(), 'fedvm-prom-rw-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const scrape = targets.length === 0 ? '' : `scrape_configs:\n  - job_name: fedvm\n    static_configs:\n      - targets: ${JSON.stringify(targets)}\n`
    await writeFile(join(dir, 'prometheus.yml'), `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nstorage:\n  tsdb:\n    out_of_order_time_window: 1h\n${scrape}`)
    const receiver = new PrometheusReceiver(dir, await freePort())
    t.teardown(() => receiver.kill('SIGKILL'))
    await receiver.launch()
    return receiver
  }

  get writeUrl (): string {
    return `http://127.0.0.1:${this.port}/api/v1/write`
  }

  get log (): string {
    return this.stderr.slice(-3000)
  }

  /** Starts (again) on the same port and TSDB folder; resolves when /-/ready answers. */
  async launch (): Promise<void> {
    const child = spawn('/usr/bin/prometheus', [
      `--config.file=${join(this.dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(this.dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${this.port}`,
      '--web.enable-remote-write-receiver',
    ], { stdio: ['ignore', 'ignore', 'pipe'], cwd: this.dir })
    this.child = child
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { this.stderr += chunk })
    const deadline = Date.now() + 60_000
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`prometheus exited: ${this.log}`)
      try {
        if ((await fetch(`http://127.0.0.1:${this.port}/-/ready`)).ok) return
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`prometheus not ready within 60 s: ${this.log}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }

  /** Kills it (by its PID) and waits until it is gone. */
  async kill (signal: NodeJS.Signals): Promise<void> {
    const child = this.child
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    const gone = new Promise((resolve) => child.once('close', resolve))
    child.kill(signal)
    await gone
  }

  /** Every raw sample of `selector` within `range` before `at` (an instant query of a range vector). */
  async samples (selector: string, at: number, range = '3h'): Promise<StoredSample[]> {
    const body = await this.api('query', { query: `${selector}[${range}]`, time: String(at / 1000) })
    const result = body.data.result as Array<{ metric: Record<string, string>, values: Array<[number, string]> }>
    return result.flatMap((r) => r.values.map(([ts, v]) => ({ labels: r.metric, ts: Math.round(ts * 1000), value: Number(v) })))
  }

  /** An instant query: how many series it returns. */
  async instant (query: string): Promise<number> {
    return (await this.api('query', { query })).data.result.length
  }

  /** query_range over [start, end] (ms) with `stepMs`: each series' points as [ms, value]. */
  async range (query: string, start: number, end: number, stepMs: number): Promise<Array<{ labels: Record<string, string>, points: Array<[number, number]> }>> {
    const body = await this.api('query_range', { query, start: String(start / 1000), end: String(end / 1000), step: String(stepMs / 1000) })
    const result = body.data.result as Array<{ metric: Record<string, string>, values: Array<[number, string]> }>
    return result.map((r) => ({ labels: r.metric, points: r.values.map(([ts, v]) => [Math.round(ts * 1000), Number(v)]) }))
  }

  private async api (path: string, params: Record<string, string>): Promise<any> {
    const response = await fetch(`http://127.0.0.1:${this.port}/api/v1/${path}?${new URLSearchParams(params).toString()}`)
    const body = await response.json() as { status: string, error?: string }
    if (body.status !== 'success') throw new Error(`${path} ${JSON.stringify(params)}: ${body.error ?? response.status}`)
    return body
  }
}
