import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { readSealKeyPair } from '../../protocol/crypto/key-files'
import { seal, unseal } from '../../protocol/crypto/sealed-box'
import { readSigningKeyPair } from '../../protocol/crypto/signing-keys'
import { signForward } from '../../protocol/envelope/sign-request'
import { AgentSetup } from '../agent/support/agent-setup'
import { sleep, waitFor } from '../support/wait'
import { Federation } from '../protocol/support/federation'
import { RecordingProxy } from '../protocol/support/recording-proxy'
import { post, signAs } from '../protocol/support/signed-client'
import { makeVmDir } from '../protocol/support/vm-files'
import { MonitoringStores, injected, postIngest } from '../protocol/support/monitoring-stores'

// The primary A delegates web-1 to B, which delegates it to C. C's agent (a real
// `fedvm agent run` fed by a real guestfs mount) posts to C's ingest; the deliveries reach A's
// primary store through B, each hop signed anew by its sender, sealed payloads opaque on the way.
// Then faults (B killed, A killed), a migration C → D (D under A), and bad input.

const VM = 'web-1'
const USERS = 'kpi:users.current_users'
const SEQUENCE = [12, 57, 33, 81, 5] // median 33
const REVENUE = 73915.625 // sealed at the host (encrypt: true)
const SECRET = 'cardholder-4417,88123\n' // sealed by the application (encrypted/)

t.test('monitoring relay through a 3-site chain', async (t) => {
  const fed = await Federation.create([
    { id: 'site-a', ip: '127.0.0.51', hosts: [{ id: 'a1', maxVms: 0 }], partners: ['site-b', 'site-d'], policy: { delegate: true, expose: 'all', acceptFrom: [], prefer: ['site-b'] }, monitoring: {} },
    { id: 'site-b', ip: '127.0.0.52', partners: ['site-a', 'site-c'], policy: { delegate: true, expose: 'all' }, monitoring: {} },
    { id: 'site-c', ip: '127.0.0.53', hosts: [{ id: 'c1', maxVms: 1 }], partners: ['site-b'], monitoring: { ingest: true } },
    { id: 'site-d', ip: '127.0.0.54', hosts: [{ id: 'd1', maxVms: 1 }], partners: ['site-a'], monitoring: { ingest: true } },
  ])
  t.teardown(() => fed.close())
  // Recorders in front of A (B and D send through it) and of B (C sends through it): the very bytes each hop forwards.
  const atA = await RecordingProxy.start(t, fed.site('site-a'))
  const atB = await RecordingProxy.start(t, fed.site('site-b'))
  const pointAt = (from: string, to: string, url: string) => fed.reconfigure(from, (c) => { c.partners.find((p: { id: string }) => p.id === to).url = url })
  await pointAt('site-b', 'site-a', atA.url)
  await pointAt('site-d', 'site-a', atA.url)
  await pointAt('site-c', 'site-b', atB.url)
  await fed.start()
  const stores = new MonitoringStores(fed)
  const ingest = (site: string) => `http://${(fed.site(site).config.monitoring as { ingest: string }).ingest}/v1/deliveries`

  const image = join(fed.root, 'image')
  await makeVmDir(image, { 'disk.img': 256 * 1024, 'domain.xml': 700 })
  const placed = await fed.cli('site-a', 'place', '--vm', VM, '--dir', image)
  t.match(placed.json, { outcome: 'migrated', destination: 'site-b' }, 'web-1 placed A → B → C')
  t.same((await fed.cli('site-c', 'status')).json.locations, [{ vmId: VM, kind: 'host', target: 'c1', upstream: 'site-b' }])

  const aSeal = await readSealKeyPair(join(fed.site('site-a').dir, 'keys', 'seal.key'))
  const specs = [
    { metric: USERS, monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' },
    { metric: USERS, monitoringIntervalMs: 0, deliveryIntervalMs: 1500, format: 'processed', function: 'median' },
    { metric: 'kpi:billing.revenue', monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw', encrypt: true },
    { metric: 'kpi:secret', monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' },
  ]
  const setup = await AgentSetup.create(t, { monitoring: specs, consumers: [ingest('site-c')] })
  await setup.writeDescriptor(specs, { primarySite: { id: 'site-a', publicKey: fed.site('site-a').keys.sealPublicKey } })

  await t.test('KPIs written at C reach A processed as specified; sealed ones open only at A', async (t) => {
    // Written before the agent starts: it catches up from its cursor, so the first window holds the whole sequence.
    for (const n of SEQUENCE) t.equal(await setup.write('users', `current_users\n${n}\n`), 'ok')
    t.equal(await setup.write('billing', `revenue\n${REVENUE}\n`), 'ok')
    const sealedSecret = await seal(Buffer.from(SECRET), aSeal.publicKey)
    t.equal(await setup.mount!.app.outcome({ op: 'write', path: setup.mount!.path('encrypted', 'secret'), data: { base64: sealedSecret.toString('base64') } }), 'ok')
    await setup.startAgent()

    const at = await waitFor('the deliveries at A', () => {
      const rows = stores.deliveries('site-a')
      return rows.some((d) => d.function === 'median') && rows.filter((d) => d.metric === USERS && d.format === 'raw').length === SEQUENCE.length &&
        rows.some((d) => d.metric === 'kpi:secret') && rows.some((d) => d.metric === 'kpi:billing.revenue') && rows
    }, 30_000)
    t.same(at.filter((d) => d.metric === USERS && d.format === 'raw').flatMap((d) => d.samples!.map((s) => Number(s.value))).sort((a, b) => a - b), [...SEQUENCE].sort((a, b) => a - b), 'raw: every value once')
    t.same(at.filter((d) => d.function === 'median').map((d) => d.value), [33], 'processed: the median of the window')
    const revenue = at.find((d) => d.metric === 'kpi:billing.revenue')!
    t.equal(revenue.samples, undefined, 'encrypt: true arrives sealed')
    t.same(JSON.parse((await unseal(Buffer.from(revenue.sealed!, 'base64'), aSeal)).toString()).samples.map((s: { value: number }) => s.value), [REVENUE], 'A opens it with its seal.key')
    const secret = at.find((d) => d.metric === 'kpi:secret')!
    t.equal(secret.sealed, sealedSecret.toString('base64'), 'the encrypted/ KPI arrives as the very bytes the app wrote')
    t.equal((await unseal(Buffer.from(secret.sealed!, 'base64'), aSeal)).toString(), SECRET)

    await waitFor('B and C to hold nothing once acknowledged', () => stores.queued('site-b') === 0 && stores.queued('site-c') === 0, 10_000)
    t.equal(stores.deliveries('site-b').length + stores.deliveries('site-c').length, 0, 'nothing in B\'s or C\'s primary store either')

    // Sealed: neither the intermediaries' databases nor the bodies they forwarded hold the plaintext.
    const plain = [String(REVENUE), 'cardholder-4417', '88123']
    for (const site of ['site-b', 'site-c']) {
      const bytes = stores.rawBytes(site)
      for (const p of plain) t.notOk(bytes.includes(p), `${site}'s monitoring.db and WAL hold no ${p}`)
    }
    const fromC = atB.bodies('monitoring-deliveries')
    const fromB = atA.bodies('monitoring-deliveries')
    t.ok(fromB.some((r) => r.body.deliveries.some((d: { id: string, sealed?: string }) => d.id === revenue.id && d.sealed === revenue.sealed)), 'B did forward the sealed delivery')
    for (const p of plain) t.notOk(Buffer.concat([...atB.requests, ...atA.requests].map((r) => r.body)).includes(p), `no forwarded body holds ${p}`)
    // Each hop signs a new request as its origin: one hop record, from the neighbour, nothing of the chain beyond.
    t.ok(fromC.length > 0 && fromC.every((r) => r.hops.length === 1 && r.hops[0].from === 'site-c' && r.hops[0].to === 'site-b'), `C → B: ${fromC.length} requests, each one hop from site-c`)
    t.ok(fromB.length > 0 && fromB.every((r) => r.hops.length === 1 && r.hops[0].from === 'site-b' && r.hops[0].to === 'site-a'), `B → A: ${fromB.length} requests, each one hop from site-b`)
    t.notOk(JSON.stringify(fromB).includes('site-c'), 'what A receives never names site-c')
  })

  await t.test('B killed mid-stream, then A: nothing lost, nothing duplicated', async (t) => {
    const first = injected(VM, 'b-down', 1200)
    const agentValues = [1001, 1002, 1003, 1004, 1005]
    for (let i = 0; i < 24; i++) {
      await postIngest(ingest('site-c'), first.slice(i * 50, (i + 1) * 50))
      if (i === 8) {
        await fed.stop('site-b', 'SIGKILL')
        for (const n of agentValues) t.equal(await setup.write('users', `current_users\n${n}\n`), 'ok') // the agent's rows, while B is down
      }
      await sleep(40)
    }
    await sleep(1000)
    t.ok(stores.queued('site-c') > 0, `C holds what it could not pass on (${stores.queued('site-c')})`)
    await fed.start('site-b')
    await waitFor('C to pass its backlog on to B', () => stores.queued('site-c') === 0, 30_000).catch((err) => {
      t.comment(fed.daemon('site-c').events().filter((e) => String(e.event).startsWith('monitoring')).slice(-5))
      t.comment(fed.daemon('site-b').stderr.slice(-3000))
      throw err
    })

    const second = injected(VM, 'a-down', 1200)
    for (let i = 0; i < 24; i++) {
      await postIngest(ingest('site-c'), second.slice(i * 50, (i + 1) * 50))
      if (i === 8) await fed.stop('site-a', 'SIGKILL')
      await sleep(40)
    }
    await sleep(1000)
    t.ok(stores.queued('site-b') > 0, `B holds what it could not pass on to A (${stores.queued('site-b')})`)
    await fed.start('site-a')

    const ids = [...first, ...second].map((d) => d.id)
    await waitFor('every injected delivery at A', () => stores.countIds('site-a', ids) === ids.length, 30_000)
    t.equal(stores.countIds('site-a', ids), ids.length, `all ${ids.length} injected deliveries at A, each id once`)
    const values = await waitFor('the agent\'s rows at A', () => {
      const v = stores.deliveries('site-a').filter((d) => d.metric === USERS && d.format === 'raw').flatMap((d) => d.samples!.map((s) => s.value))
      return agentValues.every((n) => v.includes(n)) && v
    }, 20_000)
    for (const n of [...SEQUENCE, ...agentValues]) t.equal(values.filter((v) => v === n).length, 1, `KPI row ${n}: exactly one sample at A`)
    await waitFor('the intermediaries drained', () => stores.queued('site-b') === 0 && stores.queued('site-c') === 0, 10_000)
  })

  await t.test('the chain follows migration: new deliveries take the new chain, queued ones still arrive', async (t) => {
    await setup.agent.stop() // the agent at C goes with the VM; late deliveries are injected below
    const evicted = await fed.cli('site-c', 'evict', '--vm', VM)
    t.match(evicted.json, { outcome: 'escalated', answer: { outcome: 'performed', by: 'site-a', result: { outcome: 'migrated', destination: 'site-d' } } }, 'web-1 moved C → D')
    t.same((await fed.cli('site-a', 'status')).json.locations, [{ vmId: VM, kind: 'partner', target: 'site-d', upstream: null }])
    t.same((await fed.cli('site-c', 'status')).json.locations, [], 'C forgot web-1 (but keeps its former route)')

    // Late deliveries at C (its agent's outbox, say) while B is down: C queues them along the old chain.
    await fed.stop('site-b')
    const late = injected(VM, 'late', 300)
    t.same(await postIngest(ingest('site-c'), late), { status: 200, json: { accepted: 300 } }, 'C still takes deliveries for the VM that left')
    await sleep(300)
    t.equal(stores.queued('site-c'), 300, 'queued at C for B')
    await fed.start('site-b')
    const fresh = injected(VM, 'new', 300)
    const before = atA.bodies('monitoring-deliveries').length
    t.same(await postIngest(ingest('site-d'), fresh), { status: 200, json: { accepted: 300 } })
    const ids = [...late, ...fresh].map((d) => d.id)
    await waitFor('late and new deliveries at A', () => stores.countIds('site-a', ids) === ids.length, 20_000)
    t.pass('late deliveries came C → B → A by the former route, new ones D → A')
    const newer = atA.bodies('monitoring-deliveries').slice(before)
    const fromD = newer.filter((r) => r.body.deliveries.some((d: { id: string }) => d.id.startsWith('new-')))
    t.ok(fromD.length > 0 && fromD.every((r) => r.hops.length === 1 && r.hops[0].from === 'site-d'), 'new deliveries came to A from site-d, one hop')
    t.ok(newer.filter((r) => r.body.deliveries.some((d: { id: string }) => d.id.startsWith('late-'))).every((r) => r.hops.length === 1 && r.hops[0].from === 'site-b'), 'late ones from site-b')
    await waitFor('nothing left queued', () => stores.queued('site-b') + stores.queued('site-c') + stores.queued('site-d') === 0, 10_000)
  })

  await t.test('bad input: a problem naming the field, nothing stored', async (t) => {
    const good = injected(VM, 'bad-batch', 1)[0]
    const before = stores.deliveries('site-a').length
    let answer = await postIngest(ingest('site-d'), [good, { ...good, id: 'x1', format: 'raw' }])
    t.match(answer, { status: 400, json: { code: 'bad-request', detail: /deliveries\[1\]\.value/ } }, 'a raw delivery with a value: the field is named')
    answer = await postIngest(ingest('site-d'), [{ ...good, id: 'x2', value: undefined }])
    t.match(answer, { status: 400, json: { code: 'bad-request', detail: /deliveries\[0\]\.samples.*exactly one of/ } })
    answer = await postIngest(ingest('site-d'), [{ ...good, id: 'x3', from: 'yesterday' }])
    t.match(answer, { status: 400, json: { code: 'bad-request', detail: /deliveries\[0\]\.from/ } })
    answer = await postIngest(ingest('site-d'), Buffer.from('{"id": '))
    t.match(answer, { status: 400, json: { code: 'bad-request', detail: /JSON/ } })
    answer = await postIngest(ingest('site-d'), [{ ...good, id: 'x4', vm: 'vm-nobody-knows' }])
    t.match(answer, { status: 404, json: { code: 'unknown-vm', detail: /deliveries\[0\]\.vm/ } })

    const send = async (from: string, to: string, body: unknown) => post(fed, to, 'monitoring-deliveries', await signAs(fed, from, to, 'monitoring-deliveries', body))
    t.match(await send('site-d', 'site-a', { deliveries: [{ ...good, id: 'x5', metric: undefined }] }), { status: 400, json: { code: 'bad-request', detail: /deliveries\[0\]\.metric/ } }, 'signed, malformed: the field is named')
    t.match(await send('site-d', 'site-a', { deliveries: 'all of them' }), { status: 400, json: { code: 'bad-request', detail: /deliveries must be a list/ } })
    t.match(await send('site-a', 'site-d', { deliveries: [{ ...good, id: 'x6' }] }), { status: 403, json: { code: 'not-permitted' } }, 'A never delegated web-1 to... A: D refuses A\'s deliveries for it')
    const request = await signAs(fed, 'site-d', 'site-a', 'monitoring-deliveries', { deliveries: [{ ...good, id: 'x7' }] })
    t.match(await post(fed, 'site-a', 'monitoring-deliveries', { ...request, hops: [] }), { status: 401, json: { code: 'bad-signature' } }, 'unsigned: refused')
    const tampered = { ...request, body: { deliveries: [{ ...good, id: 'x7', value: 1e9 }] } }
    t.match(await post(fed, 'site-a', 'monitoring-deliveries', tampered), { status: 401, json: { code: 'bad-signature' } }, 'badly signed: refused')
    const viaA = await signForward({ id: 'site-a', secretKey: (await readSigningKeyPair(join(fed.site('site-a').dir, 'keys'))).secretKey },
      await signAs(fed, 'site-b', 'site-a', 'monitoring-deliveries', { deliveries: [{ ...good, id: 'x8' }] }), 'site-d', fed.site('site-b').keys.publicKey)
    t.match(await post(fed, 'site-d', 'monitoring-deliveries', viaA), { status: 403, json: { code: 'not-permitted', detail: /signed anew by each hop/ } }, 'a forwarded (two-hop) request: refused')
    await sleep(300)
    t.equal(stores.deliveries('site-a').length, before, 'nothing was stored at A')
    t.equal(stores.countIds('site-a', ['bad-batch-0', 'x1', 'x2', 'x3', 'x4', 'x5', 'x6', 'x7', 'x8']), 0)
    t.equal(stores.queued('site-d'), 0, 'nor queued at D')
    t.notOk(readFileSync(join(fed.site('site-a').dir, 'state', 'monitoring.db')).includes('bad-batch-0'))
  })
})
