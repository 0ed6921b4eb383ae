import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './free-port'
import type { Teardownable } from './teardownable'

export interface PromSample {
  metric: Record<string, string>
  value: number
}

const BINARY = '/usr/bin/prometheus'


/**
 * A real Prometheus server (Debian `prometheus`, installed by packaging/setup.sh) for one test:
 * its own config and TSDB in a temp dir, listening on a free loopback port, scraping the given
 * targets every second. Stopped by PID at teardown (SIGTERM, then SIGKILL), also on failure.
 */
export class PrometheusServer {
  private stderr = ''
  private readonly exited: Promise<void>

  private constructor (readonly child: ChildProcess, readonly port: number) {
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { this.stderr += chunk })
    this.exited = new Promise((resolve) => child.once('close', () => resolve()))
  }

  static async start (t: Teardownable, targets: string[], options: { job?: string, scrapeInterval?: string } = {}): Promise<PrometheusServer> {
    const dir = await mkdtemp(join(tmpdir(), 'fedvm-prometheus-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const interval = options.scrapeInterval ?? '1s'
    const config = [
      'global:',
      `  scrape_interval: ${interval}`,
      `  evaluation_interval: ${interval}`,
      'scrape_configs:',
      `  - job_name: ${JSON.stringify(options.job ?? 'fedvm-agent')}`,
      `    scrape_timeout: ${interval}`,
      '    static_configs:',
      `      - targets: ${JSON.stringify(targets)}`,
      '',
    ].join('\n')
    await writeFile(join(dir, 'prometheus.yml'), config)
    const port = await freePort()
    const child = spawn(BINARY, [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--storage.tsdb.retention.time=1h',
    ], { stdio: ['ignore', 'ignore', 'pipe'], cwd: dir })
    const server = new PrometheusServer(child, port)
    t.teardown(() => server.stop())
    await server.waitReady()
    return server
  }

  get url (): string {
    return `http://127.0.0.1:${this.port}`
  }

  log (): string {
    return this.stderr
  }

  private async waitReady (): Promise<void> {
    const deadline = Date.now() + 30_000
    for (;;) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`prometheus exited: ${this.stderr.slice(-2000)}`)
      try {
        const response = await fetch(`${this.url}/-/ready`)
        if (response.ok) return
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`prometheus not ready within 30 s: ${this.stderr.slice(-2000)}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }

  /** An instant query through the HTTP API (`/api/v1/query`); throws on an API error. */
  async query (promql: string): Promise<PromSample[]> {
    const response = await fetch(`${this.url}/api/v1/query?query=${encodeURIComponent(promql)}`)
    const body = await response.json() as { status: string, error?: string, data?: { resultType: string, result: Array<{ metric: Record<string, string>, value: [number, string] }> } }
    if (body.status !== 'success' || !body.data) throw new Error(`query ${promql}: ${body.error ?? response.status}`)
    if (body.data.resultType !== 'vector') throw new Error(`query ${promql}: a ${body.data.resultType}, not a vector`)
    return body.data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }))
  }

  /** The scrape targets' health as Prometheus sees it (`/api/v1/targets`). */
  async targets (): Promise<Array<{ scrapeUrl: string, health: string, lastError: string }>> {
    const response = await fetch(`${this.url}/api/v1/targets`)
    const body = await response.json() as { data: { activeTargets: Array<{ scrapeUrl: string, health: string, lastError: string }> } }
    return body.data.activeTargets
  }

  async stop (): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM')
      const stopped = await Promise.race([this.exited.then(() => true), new Promise<boolean>((resolve) => setTimeout(resolve, 10_000, false))])
      if (!stopped) this.child.kill('SIGKILL')
    }
    await this.exited
  }
}
