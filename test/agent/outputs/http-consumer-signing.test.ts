import t from 'tap'
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { HttpConsumer } from '../../../agent/outputs/http-consumer'
import { AgentStore } from '../../../agent/state/agent-store'
import { decodeKey } from '../../../protocol/crypto/key-files'
import { HOST_PUBLIC_FILE, writeHostKeyPair } from '../../../protocol/crypto/host-key'
import { MemoryReplayCache } from '../../../protocol/envelope/replay-cache'
import { PrimaryStore } from '../../../protocol/primary/primary-store'
import { createIngestServer, INGEST_PATH } from '../../../protocol/relay/ingest-server'
import { openMonitoringDb } from '../../../protocol/relay/monitoring-db'
import { MonitoringRelay } from '../../../protocol/relay/monitoring-relay'
import { waitFor } from '../../support/wait'

// The agent's http consumer signing with a host key from `fedvm host-key`'s files, against the real
// ingest of a site that lists the host's public key: its batches are stored; the same consumer
// with another host's key file is refused and keeps its deliveries queued.

t.test('an agent signs its batches with its host key; a wrong key is refused and nothing is lost', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-consumer-signing-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const publicKey = await writeHostKeyPair(join(dir))
  t.equal(decodeKey('host.pub', await readFile(join(dir, HOST_PUBLIC_FILE), 'utf8')).length, 32)
  const other = join(dir, 'other')
  await mkdir(other)
  await writeHostKeyPair(other)

  const db = openMonitoringDb(join(dir, 'site'))
  const relay = new MonitoringRelay({
    siteId: 'site-a', db, primary: new PrimaryStore(db), send: async () => {}, log: () => {}, lingerMs: 1, tombstoneMs: 60_000, maxBatchBytes: 64 * 1024,
    state: { location: (vm) => vm === 'vm-a' ? { vmId: vm, kind: 'host', target: 'h1', upstream: null, descriptor: null, version: 'v' } : undefined, formerLocations: () => [] },
  })
  const server = createIngestServer({ relay, log: () => {}, hosts: { publicKey: (host) => host === 'h1' ? decodeKey('h1', publicKey) : undefined, windowMs: 30_000, replay: new MemoryReplayCache() } })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${INGEST_PATH}`
  const store = new AgentStore(join(dir, 'agent'))
  const logs: string[] = []
  const consumers: HttpConsumer[] = []
  t.teardown(async () => {
    for (const c of consumers) c.stop()
    await new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections() })
    await relay.close()
    db.close()
    store.close()
  })
  const stored = (): string[] => db.prepare('SELECT id FROM deliveries ORDER BY id').pluck().all() as string[]
  const now = Date.now()
  const delivery = (id: string) => ({ id, vm: 'vm-a', metric: 'kpi:users.current_users', format: 'processed' as const, function: 'max' as const, from: now - 1000, to: now, value: 7 })

  const wrong = new HttpConsumer('http:wrong', url, store, (line) => logs.push(line), { host: 'h1', keyFile: join(other, 'host.key') })
  consumers.push(wrong)
  store.enqueue('http:wrong', delivery('w1'))
  wrong.start()
  await waitFor('the refusal', () => logs.some((l) => /HTTP 401/.test(l)), 20_000, 25, () => logs.join('\n'))
  t.equal(store.queueLength('http:wrong'), 1, 'the refused delivery stays queued')
  wrong.stop()

  const right = new HttpConsumer('http:right', url, store, (line) => logs.push(line), { host: 'h1', keyFile: join(dir, 'host.key') })
  consumers.push(right)
  for (const id of ['r1', 'r2', 'r3']) store.enqueue('http:right', delivery(id))
  right.start()
  await waitFor('the signed deliveries stored', () => stored().length === 3, 20_000)
  t.same(stored(), ['r1', 'r2', 'r3'])
  t.notOk(stored().includes('w1'))
})
