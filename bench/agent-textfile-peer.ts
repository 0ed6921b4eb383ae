// The baseline of bench/agent-cost's close() → /metrics latency: node_exporter's textfile collector
// in Node: an HTTP server that reads a text file from disk on every GET /metrics. Prints its port.
// Usage: node dist/bench/agent-textfile-peer.js FILE
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

const [file] = process.argv.slice(2)
const server = createServer((req, res) => {
  readFile(file, 'utf8').then(
    (text) => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(text),
    (err: Error) => res.writeHead(500).end(err.message),
  )
})
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as AddressInfo).port}\n`))
process.on('SIGTERM', () => server.close(() => process.exit(0)))
