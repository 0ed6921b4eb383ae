import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http'
import { ProtocolError, toProtocolError } from '../../errors'
import { PROBLEM_CONTENT_TYPE, toProblemDocument } from '../../http/problem'
import type { Log } from '../../log'
import type { KpiSeries } from './kpi-series'
import { PAGE_CSS, PAGE_HTML } from './dashboard-page'
import { PAGE_SCRIPT } from './dashboard-script'
import { namesLoopbackDirectly } from './host-header'
import type { SiteOverview } from './site-overview'

export interface DashboardReads {
  overview: () => SiteOverview
  /** undefined: this site lists no such VM. */
  kpis: (vmId: string) => Promise<KpiSeries[] | undefined>
}

/** The chart library's browser build and stylesheet, read from node_modules once at start (no CDN). */
export interface ChartLibrary { script: Buffer, css: Buffer }

/**
 * Every page load and script and style stays on this origin; the page frames nothing and is framed
 * by nothing, and nothing is cached (the answers change every second).
 */
const COMMON_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
}

/**
 * The dashboard's routes, all GET (the page is read-only): the page and its assets, and the JSON it
 * polls: /api/overview (VMs, migrations, rule firings) and /api/kpis?vm=ID (that VM's charts).
 * `checkHost` (no basic auth) answers only requests that name the machine by address or as localhost.
 */
export function dashboardRoutes (reads: DashboardReads, chart: ChartLibrary, log: Log, options: { checkHost: boolean }): RequestListener {
  const assets: Record<string, { type: string, body: Buffer }> = {
    '/': { type: 'text/html; charset=utf-8', body: Buffer.from(PAGE_HTML) },
    '/dashboard.js': { type: 'text/javascript; charset=utf-8', body: Buffer.from(PAGE_SCRIPT) },
    '/dashboard.css': { type: 'text/css; charset=utf-8', body: Buffer.from(PAGE_CSS) },
    '/uplot.js': { type: 'text/javascript; charset=utf-8', body: chart.script },
    '/uplot.css': { type: 'text/css; charset=utf-8', body: chart.css },
  }
  return (req, res) => {
    answer(req, res).catch((err) => {
      const problem = toProtocolError(err)
      if (problem.code === 'internal') log({ event: 'dashboard-failed', url: req.url, error: String(problem.cause ?? err) })
      send(res, problem.status, PROBLEM_CONTENT_TYPE, Buffer.from(JSON.stringify(toProblemDocument(problem))))
    })
  }

  async function answer (req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD')
      return send(res, 405, 'text/plain; charset=utf-8', Buffer.from('the dashboard is read-only: GET and HEAD only\n'))
    }
    if (options.checkHost && !namesLoopbackDirectly(req.headers.host)) {
      throw new ProtocolError('misdirected', 'Host must be an address of this machine or localhost (a page without basic auth answers no other name)')
    }
    const url = new URL(req.url ?? '/', 'http://dashboard')
    const asset = assets[url.pathname]
    if (asset !== undefined) return send(res, 200, asset.type, asset.body)
    if (url.pathname === '/api/overview') return sendJson(res, reads.overview())
    if (url.pathname === '/api/kpis') {
      const vmId = url.searchParams.get('vm')
      if (vmId === null || vmId === '') throw new ProtocolError('bad-request', 'vm: the query parameter ?vm=ID is needed')
      const series = await reads.kpis(vmId)
      if (series === undefined) throw new ProtocolError('unknown-vm', `vm: this site lists no VM ${JSON.stringify(vmId.slice(0, 128))}`)
      return sendJson(res, { vmId, series })
    }
    throw new ProtocolError('unknown-operation', `no page ${url.pathname.slice(0, 128)}: the dashboard is at /`)
  }
}

function sendJson (res: ServerResponse, value: unknown): void {
  send(res, 200, 'application/json', Buffer.from(JSON.stringify(value)))
}

function send (res: ServerResponse, status: number, type: string, body: Buffer): void {
  res.writeHead(status, { ...COMMON_HEADERS, 'content-type': type, 'content-length': body.length }).end(body)
}
