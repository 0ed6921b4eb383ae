import t from 'tap'
import Database from 'better-sqlite3'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { encodeKey } from '../../../../protocol/crypto/key-files'
import { generateBoxKeyPair, seal } from '../../../../protocol/crypto/sealed-box'
import { PrimaryStore } from '../../../../protocol/primary/primary-store'
import { seriesOf } from '../../../../protocol/primary/remote-write/delivery-series'
import { RemoteWriter } from '../../../../protocol/primary/remote-write/remote-writer'
import { SealedOpener } from '../../../../protocol/primary/sealed-opener'
import { parseMonitoringConfig } from '../../../../protocol/site/monitoring-config'
import type { Delivery } from '../../../../protocol/relay/delivery'
import { waitFor } from '../../../support/wait'
import { PrometheusReceiver, type StoredSample } from './prometheus-receiver'

// The primary store's deliveries reach a real Prometheus through its remote-write receiver, each value
// at its data time; a Prometheus SIGKILLed and restarted loses none of them, and sealed values go
// only where the site's metricsSealed says.

const VM = 'vm1'
const STEP = 250 // ms between the guest's timestamps

t.test('remote write to a real Prometheus, across its restart', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-remote-write-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const keys = await generateBoxKeyPair()
  await writeFile(join(dir, 'seal.key'), `${encodeKey(keys.secretKey)}\n`, { mode: 0o600 })
  const opener = await SealedOpener.load(dir)
  const db = new Database(join(dir, 'primary.db'))
  t.teardown(() => db.close())
  const store = new PrimaryStore(db)

  // Millisecond timestamps not on a whole second: Prometheus must keep the guest's own times.
  const base = Date.now() - 60_000 - 123
  const at = (k: number): number => base + k * STEP
  const expected: StoredSample[] = []
  const users = (k: number, value: number): Delivery => {
    expected.push({ labels: { metric: 'kpi:users.current_users', function: 'median' }, ts: at(k), value })
    return { id: `u-${k}`, vm: VM, metric: 'kpi:users.current_users', format: 'processed', function: 'median', from: at(k) - STEP, to: at(k), value }
  }
  const cpu = (k: number, values: number[]): Delivery => {
    values.forEach((value, i) => expected.push({ labels: { metric: 'cpu.time', function: 'raw' }, ts: at(k + i), value }))
    return { id: `c-${k}`, vm: VM, metric: 'cpu.time', format: 'raw', from: at(k), to: at(k + values.length - 1), samples: values.map((value, i) => ({ ts: at(k + i), value })) }
  }
  const revenue = async (k: number, value: number): Promise<Delivery> => {
    expected.push({ labels: { metric: 'kpi:revenue', function: 'mean' }, ts: at(k), value })
    const sealed = (await seal(Buffer.from(JSON.stringify({ function: 'mean', value })), keys.publicKey)).toString('base64')
    return { id: `r-${k}`, vm: VM, metric: 'kpi:revenue', format: 'processed', function: 'mean', from: at(k) - STEP, to: at(k), sealed }
  }
  // What the relay does for a batch: store it in one transaction, then tell the listeners (here: kick).
  let writer: RemoteWriter | undefined
  const deliver = (deliveries: Delivery[]): void => {
    db.transaction(() => store.insert(deliveries))()
    writer?.kick()
  }

  const prometheus = await PrometheusReceiver.start(t)
  const events: Array<Record<string, unknown>> = []
  writer = new RemoteWriter({ url: prometheus.writeUrl, db, opener, includeSealed: true, log: (e) => events.push(e), batchSize: 7, backoff: { minMs: 100, maxMs: 1000, jitter: false } })
  t.teardown(() => writer!.close())

  // Out of time order on purpose (as deliveries of several hosts and windows arrive).
  deliver([users(20, 510), cpu(0, [1.5, 2.5, 3.25]), users(4, 120.5), await revenue(10, 4711.5)])
  deliver(Array.from({ length: 16 }, (_, i) => users(21 + i, 600 + i)))
  await waitFor('every delivery acknowledged by Prometheus', () => writer!.pending() === 0, 60_000, 50, () => JSON.stringify(events.slice(-5)))

  await prometheus.kill('SIGKILL')
  deliver([users(40, 700), cpu(41, [4, 5])])
  await waitFor('a failed send to the killed Prometheus', () => events.some((e) => e.event === 'remote-write-failed'), 30_000)
  // Deliveries keep arriving while it is down, one far outside its out-of-order window.
  deliver([users(50, 800), await revenue(51, 99.25)])
  const tooOld: Delivery = { id: 'old-0', vm: VM, metric: 'kpi:users.current_users', format: 'processed', function: 'median', from: base - 3 * 3600_000, to: base - 3 * 3600_000 + 1, value: 1 }
  deliver([users(60, 900), tooOld, users(61, 901)])
  t.ok(writer.pending() > 0, 'deliveries wait while Prometheus is down')

  // The site restarts too while Prometheus is down: a new writer on the same store takes up the backlog.
  await writer.close()
  writer = new RemoteWriter({ url: prometheus.writeUrl, db, opener, includeSealed: true, log: (e) => events.push(e), batchSize: 7, backoff: { minMs: 100, maxMs: 1000, jitter: false } })
  await prometheus.launch()
  writer.kick()
  await waitFor('the backlog acknowledged by the restarted Prometheus', () => writer!.pending() === 0, 60_000, 50, () => JSON.stringify(events.slice(-5)) + prometheus.log)

  const now = Date.now()
  const stored = (await prometheus.samples(`fedvm_kpi_history{vm="${VM}"}`, now))
  const key = (s: StoredSample): string => `${s.labels.metric}|${s.labels.function}|${s.ts}|${s.value}`
  t.same(stored.map(key).sort(), expected.map(key).sort(), 'every value once, at its guest timestamp, the ones sent before the SIGKILL too')
  t.ok(stored.every((s) => s.labels.__name__ === 'fedvm_kpi_history' && s.labels.vm === VM), 'named fedvm_kpi_history, labelled with the VM')
  t.match(events.find((e) => e.event === 'remote-write-refused'), { id: 'old-0', detail: /too old sample/ }, 'the sample outside the window is refused alone and logged')

  // query_range on a grid through the guest's timestamps holds each value at its own time.
  const series = await prometheus.range(`fedvm_kpi_history{vm="${VM}"}`, base, at(64), STEP)
  const missing = expected.filter((e) => {
    const s = series.find((r) => r.labels.metric === e.labels.metric && r.labels.function === e.labels.function)
    return s?.points.some(([ts, value]) => ts === e.ts && value === e.value) !== true
  })
  t.same(missing, [], `query_range holds all ${expected.length} values at their guest timestamps`)
})

t.test('sealed values follow metricsSealed', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-remote-write-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const keys = await generateBoxKeyPair()
  const sealed = (await seal(Buffer.from(JSON.stringify({ samples: [{ ts: 5000, value: 42 }] })), keys.publicKey)).toString('base64')
  const d: Delivery = { id: 's', vm: VM, metric: 'load', format: 'raw', from: 5000, to: 5000, sealed }
  const plain: Delivery = { id: 'p', vm: VM, metric: 'users', format: 'raw', from: 6000, to: 6000, samples: [{ ts: 6000, value: 7 }] }
  const log = (): void => {}
  const withoutKey = await SealedOpener.load(dir)
  await writeFile(join(dir, 'seal.key'), `${encodeKey(keys.secretKey)}\n`, { mode: 0o600 })
  const opener = await SealedOpener.load(dir)
  t.same((await seriesOf([d, plain], { opener, includeSealed: true, log })).map((s) => [s.labels.metric, s.samples]),
    [['load', [{ value: 42, timestamp: 5000 }]], ['users', [{ value: 7, timestamp: 6000 }]]], 'metricsSealed: the opened value at its time')
  t.same((await seriesOf([d, plain], { opener, includeSealed: false, log })).map((s) => s.labels.metric), ['users'], 'off (the default): sealed values stay out')
  t.same((await seriesOf([d, plain], { opener: withoutKey, includeSealed: true, log })).map((s) => s.labels.metric), ['users'], 'no seal.key: sealed values stay out')
})

t.test('monitoring.remoteWrite is checked at start, naming the field', async (t) => {
  t.match(parseMonitoringConfig({ remoteWrite: { url: 'http://127.0.0.1:9090/api/v1/write' } }).remoteWrite, { batchSize: 500, timeoutMs: 10_000 })
  t.throws(() => parseMonitoringConfig({ remoteWrite: { url: 'ftp://127.0.0.1/write' } }), { message: /monitoring\.remoteWrite\.url: must be an http:\/\/ or https:\/\/ URL/ })
  t.throws(() => parseMonitoringConfig({ remoteWrite: { url: 'http://x', batch: 5 } }), { message: /monitoring\.remoteWrite\.batch: is not a known setting/ })
})
