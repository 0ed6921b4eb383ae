import t from 'tap'
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { HttpConsumer } from '../../../agent/outputs/http-consumer'
import { AgentStore } from '../../../agent/state/agent-store'
import { decodeKey } from '../../../protocol/crypto/key-files'
import { HOST_PUBLIC_FILE, writeHostKeyPair } from '../../../protocol/crypto/host-key'
import { MemoryReplayCache } from '../../../protocol/envelope/replay-cache'
import { startSiteIngestServer } from '../../support/site-ingest-server'
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

  const { url, stored } = await startSiteIngestServer(t, {
    location: (vm) => vm === 'vm-a' ? { kind: 'host', target: 'h1', upstream: null } : undefined,
    hosts: { publicKey: (host) => host === 'h1' ? decodeKey('h1', publicKey) : undefined, windowMs: 30_000, replay: new MemoryReplayCache() },
  })
  const store = new AgentStore(join(dir, 'agent'))
  const logs: string[] = []
  const consumers: HttpConsumer[] = []
  t.teardown(() => {
    for (const c of consumers) c.stop()
    store.close()
  })
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
