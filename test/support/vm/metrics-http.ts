/**
 * Thin stand-in for the agent's /metrics until the agent lands: serves a prom-client registry on
 * 127.0.0.1, plus a scraper that parses the text exposition format back into samples. The e2e
 * tests only use `serveRegistry` and `scrape`, so swapping in the real agent changes one line.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Registry } from 'prom-client'

export interface MetricsEndpoint {
  url: string
  close: () => Promise<void>
}

export async function serveRegistry (registry: Registry): Promise<MetricsEndpoint> {
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') { res.writeHead(404).end(); return }
    registry.metrics().then(body => {
      res.writeHead(200, { 'content-type': registry.contentType }).end(body)
    }, (err: Error) => {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(err.message)
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/metrics`,
    close: async () => await new Promise<void>(resolve => server.close(() => resolve()))
  }
}

export interface ScrapedSample { name: string, labels: Record<string, string>, value: number }

export class Scrape {
  constructor (readonly samples: ScrapedSample[], readonly text: string) {}

  /** Samples of `name` whose labels include all of `labels`. */
  find (name: string, labels: Record<string, string> = {}): ScrapedSample[] {
    return this.samples.filter(s => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
  }

  /** The one value of `name` with `labels`, or undefined when absent. */
  value (name: string, labels: Record<string, string> = {}): number | undefined {
    const found = this.find(name, labels)
    if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${found.length} series`)
    return found[0]?.value
  }

  /** Every series carrying this label value (e.g. all series of one domain). */
  withLabel (label: string, value: string): ScrapedSample[] {
    return this.samples.filter(s => s.labels[label] === value)
  }
}

export async function scrape (url: string): Promise<Scrape> {
  const res = await fetch(url)
  if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${await res.text()}`)
  const text = await res.text()
  return new Scrape(parsePromText(text), text)
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g

export function parsePromText (text: string): ScrapedSample[] {
  const out: ScrapedSample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = LINE.exec(line)
    if (m === null) throw new Error(`not a sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const l of (m[3] ?? '').matchAll(LABEL)) labels[l[1]] = l[2].replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\')
    out.push({ name: m[1], labels, value: Number(m[4]) })
  }
  return out
}
