import t from 'tap'
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { encodeKey } from '../../../protocol/crypto/key-files'
import { generateBoxKeyPair, seal } from '../../../protocol/crypto/sealed-box'
import type { Delivery } from '../../../protocol/relay/delivery'
import { openMonitoringDb } from '../../../protocol/relay/monitoring-db'
import { PrimaryLatest } from '../../../protocol/primary/primary-latest'
import { latestDeliveries, openStoreForReading, queryDeliveries } from '../../../protocol/primary/primary-queries'
import { PrimaryStore } from '../../../protocol/primary/primary-store'
import { queryTable } from '../../../protocol/primary/query-output'
import { parseQueryTime } from '../../../protocol/primary/query-time'
import { SealedOpener } from '../../../protocol/primary/sealed-opener'

const d = (id: string, metric: string, to: number, more: Partial<Delivery> = {}): Delivery => ({ id, vm: 'vm1', metric, format: 'processed', function: 'mean', from: to - 1000, to, value: to / 1000, ...more })

t.test('queries on a real monitoring.db', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-primary-queries-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  t.throws(() => openStoreForReading(join(dir, 'state')), { code: 'store-missing', message: /monitoring\.db does not exist: this site has stored no monitoring data/ })

  const db = openMonitoringDb(join(dir, 'state'))
  t.teardown(() => db.close())
  const store = new PrimaryStore(db)
  store.insert([
    d('a1', 'm.a', 1000), d('a2', 'm.a', 3000), d('a3', 'm.a', 2000), d('a-max', 'm.a', 3500, { function: 'max', value: 99 }),
    d('b1', 'm.b', 5000, { format: 'raw', function: undefined, value: undefined, samples: [{ ts: 4000, value: 1 }, { ts: 5000, value: 2 }] }),
    d('other', 'm.a', 9000, { vm: 'vm2' }),
  ])
  const reader = openStoreForReading(join(dir, 'state'))
  t.teardown(() => reader.close())
  const ids = (q: Parameters<typeof queryDeliveries>[1]): string[] => queryDeliveries(reader, q).map((x) => x.id)
  t.same(ids({ vm: 'vm1', limit: 100 }), ['a1', 'a3', 'a2', 'a-max', 'b1'], 'by data time, one VM')
  t.same(ids({ vm: 'vm1', metric: 'm.a', since: 2000, limit: 100 }), ['a3', 'a2', 'a-max'], 'since is inclusive')
  t.same(ids({ vm: 'vm1', metric: 'm.a', until: 2000, limit: 100 }), ['a1', 'a3'])
  t.same(ids({ vm: 'vm1', limit: 2 }), ['a-max', 'b1'], 'a limit keeps the newest, listed oldest first')
  t.same(ids({ vm: 'nobody', limit: 10 }), [])
  t.same(queryDeliveries(reader, { vm: 'vm1', metric: 'm.b', limit: 1 })[0].samples, [{ ts: 4000, value: 1 }, { ts: 5000, value: 2 }])
  t.same(latestDeliveries(reader).map((x) => x.id).sort(), ['a-max', 'a2', 'b1', 'other'], 'the newest per (vm, metric, function)')

  const latest = new PrimaryLatest()
  latest.update(latestDeliveries(reader))
  latest.update([d('a0', 'm.a', 500), d('a4', 'm.a', 4000)])
  t.same([...latest.values()].map((x) => x.id).sort(), ['a-max', 'a4', 'b1', 'other'], 'an older delivery never replaces a newer one')
})

t.test('--since/--until times', async (t) => {
  const now = Date.parse('2026-11-25T04:00:00Z')
  t.equal(parseQueryTime('10m', '--since', now), now - 600_000)
  t.equal(parseQueryTime('1.5h', '--since', now), now - 5_400_000)
  t.equal(parseQueryTime('2026-11-25T03:00:00Z', '--since', now), now - 3_600_000)
  t.equal(parseQueryTime('2026-11-25T05:00:00+02:00', '--since', now), now - 3_600_000)
  t.equal(parseQueryTime('1795000000000', '--since', now), 1795000000000, 'Unix ms')
  for (const bad of ['10', 'soon', '2026-13', '', '10 fortnights']) t.throws(() => parseQueryTime(bad, '--since', now), { code: 'bad-time', message: /^--since ".*" is neither an ISO time/ }, bad)
})

t.test('the seal key: missing, malformed, wrong', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-seal-opener-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const keys = await generateBoxKeyPair()
  const sealed: Delivery = { id: 'x-1', vm: 'vm1', metric: 'kpi:secret', format: 'raw', from: 5, to: 5, sealed: (await seal(Buffer.from('4242.5'), keys.publicKey)).toString('base64') }
  const plain: Delivery = { id: 'x-2', vm: 'vm1', metric: 'm', format: 'processed', function: 'max', from: 1, to: 2, value: 3 }

  const none = await SealedOpener.load(join(dir, 'none'))
  t.notOk(none.hasKey)
  t.match(await none.open(plain), { value: 3, wasSealed: false }, 'unsealed deliveries read without a key')
  await t.rejects(none.open(sealed), { code: 'seal-key-missing', message: /delivery x-1 is sealed and .*none\/seal\.key is missing/ })

  await mkdir(join(dir, 'bad'))
  await writeFile(join(dir, 'bad', 'seal.key'), 'not a key\n')
  await t.rejects(SealedOpener.load(join(dir, 'bad')), { code: 'seal-key-invalid', message: /bad\/seal\.key is not a seal key/ })

  await mkdir(join(dir, 'other'))
  await writeFile(join(dir, 'other', 'seal.key'), encodeKey((await generateBoxKeyPair()).secretKey))
  const wrong = await SealedOpener.load(join(dir, 'other'))
  await t.rejects(wrong.open(sealed), { code: 'sealed-unreadable', message: /delivery x-1: the sealed value does not open with/ })
  const message = await wrong.open(sealed).then(() => '', (err: Error) => err.message)
  t.notOk(message.includes('4242.5'), 'the error names the delivery, not its content')

  await mkdir(join(dir, 'right'))
  await writeFile(join(dir, 'right', 'seal.key'), encodeKey(keys.secretKey))
  t.same((await (await SealedOpener.load(join(dir, 'right'))).open(sealed)).samples, [{ ts: 5, value: 4242.5 }])
})

t.test('table cells from a VM are quoted when they hold spaces or control characters', async (t) => {
  const table = queryTable([{ id: 'i', vm: 'vm1', metric: 'kpi:odd name', format: 'raw', from: 0, to: 0, samples: [{ ts: 0, value: 'a\u001b[31mred' }], wasSealed: true }])
  t.equal(table, 'TIME                      METRIC          FUNCTION  VALUE             SEALED\n1970-01-01T00:00:00.000Z  "kpi:odd name"  raw       "a\\u001b[31mred"  yes\n')
})
