import t from 'tap'
import { request } from 'node:http'
import { generateSigningKeyPair, type SigningKeyPair } from '../../../protocol/crypto/signing-keys'
import { MemoryReplayCache } from '../../../protocol/envelope/replay-cache'
import { signIngestRequest } from '../../../protocol/relay/host-signature'
import { INGEST_PATH } from '../../../protocol/relay/ingest-server'
import type { LocationRecord } from '../../../protocol/roles/records'
import { startSiteIngestServer } from '../../support/site-ingest-server'
import type { Teardownable } from '../../support/teardownable'

// The site's monitoring ingest on a real HTTP listener, relay and monitoring.db, with the site's
// location records played by the test: vm-a runs on host h1, vm-b on host h2. Each host signs
// with its own Ed25519 key; the attacker of the forged-monitoring report has no key at all.

interface Answer { status: number, json: any }

function post (url: string, body: Buffer, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': body.length, ...headers } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

function delivery (id: string, vm: string, to = Date.now()) {
  return { id, vm, metric: 'kpi:users.current_users', format: 'processed', function: 'max', from: to - 1000, to, value: 5000 }
}

async function setup (t: Teardownable) {
  const keys: Record<string, SigningKeyPair> = { h1: await generateSigningKeyPair(), h2: await generateSigningKeyPair(), h3: await generateSigningKeyPair() }
  const locations = new Map<string, Pick<LocationRecord, 'kind' | 'target' | 'upstream'>>([
    ['vm-a', { kind: 'host', target: 'h1', upstream: null }],
    ['vm-b', { kind: 'host', target: 'h2', upstream: null }],
  ])
  const events: Array<Record<string, unknown>> = []
  // h3 is listed in the site config without a public key: it cannot deliver.
  const listed: Record<string, Uint8Array | undefined> = { h1: keys.h1.publicKey, h2: keys.h2.publicKey, h3: undefined }
  const { url, stored } = await startSiteIngestServer(t, {
    location: (vm) => locations.get(vm),
    log: (e) => events.push(e),
    hosts: { publicKey: (host) => listed[host], windowMs: 30_000, replay: new MemoryReplayCache() },
    maxClockSkewMs: 60_000,
  })
  const signed = async (host: string, payload: unknown, secretKey = keys[host].secretKey) => {
    const body = Buffer.from(JSON.stringify(payload))
    return { body, headers: await signIngestRequest(INGEST_PATH, host, secretKey, body) }
  }
  return { url, keys, stored, signed, events }
}

t.test('an unsigned batch (the forged-monitoring curl) is refused and stores nothing', async (t) => {
  const s = await setup(t)
  const answer = await post(s.url, Buffer.from(JSON.stringify(delivery('forged', 'vm-a'))))
  t.equal(answer.status, 401)
  t.match(answer.json, { code: 'unknown-sender', detail: /fedvm-host header is missing/ })
  t.same(s.stored(), [])
  t.match(s.events, [{ event: 'ingest-refused', code: 'unknown-sender' }], 'the refusal is logged')
})

t.test('a host delivers for its own VMs only', async (t) => {
  const s = await setup(t)
  const own = await s.signed('h1', [delivery('a1', 'vm-a')])
  t.match(await post(s.url, own.body, own.headers), { status: 200, json: { accepted: 1 } })
  const other = await s.signed('h1', [delivery('a2', 'vm-a'), delivery('b1', 'vm-b')])
  const refused = await post(s.url, other.body, other.headers)
  t.equal(refused.status, 403, 'h1 signs for vm-b, which runs on h2')
  t.match(refused.json, { code: 'not-permitted', detail: 'deliveries[1].vm: vm-b does not run on host h1' })
  t.same(refused.json.refused, [{ index: 1, id: 'b1', code: 'not-permitted', retryable: false, detail: 'deliveries[1].vm: vm-b does not run on host h1' }], 'listed with its own code: a2 was fine')
  const h2 = await s.signed('h2', [delivery('b2', 'vm-b')])
  t.match(await post(s.url, h2.body, h2.headers), { status: 200 })
  t.same(s.stored(), ['a1', 'b2'], 'nothing of the refused batch is stored')
})

t.test('forged, tampered, replayed, stale and keyless batches are refused', async (t) => {
  const s = await setup(t)
  const forged = await s.signed('h1', [delivery('f1', 'vm-a')], s.keys.h2.secretKey)
  t.match(await post(s.url, forged.body, forged.headers), { status: 401, json: { code: 'bad-signature' } }, 'claims h1, signed with h2\'s key')
  const good = await s.signed('h1', [delivery('g1', 'vm-a')])
  const tampered = Buffer.from(good.body.toString('utf8').replace('5000', '9999'))
  t.match(await post(s.url, tampered, good.headers), { status: 401, json: { code: 'bad-signature' } }, 'the body changed after signing')
  t.match(await post(s.url, good.body, good.headers), { status: 200 })
  t.match(await post(s.url, good.body, good.headers), { status: 409, json: { code: 'replayed-message' } }, 'the same signed request again')
  const body = Buffer.from(JSON.stringify([delivery('old', 'vm-a')]))
  const old = await signIngestRequest(INGEST_PATH, 'h1', s.keys.h1.secretKey, body, Date.now() - 120_000)
  t.match(await post(s.url, body, old), { status: 401, json: { code: 'stale-timestamp' } })
  const keyless = await s.signed('h3', [delivery('k1', 'vm-a')])
  t.match(await post(s.url, keyless.body, keyless.headers), { status: 401, json: { code: 'unknown-sender' } }, 'a host listed without a public key')
  const stranger = await s.signed('h9', [delivery('s1', 'vm-a')], s.keys.h1.secretKey)
  t.match(await post(s.url, stranger.body, stranger.headers), { status: 401, json: { code: 'unknown-sender' } }, 'a host the site does not list')
  t.same(s.stored(), ['g1'])
})

t.test('data times beyond the allowed clock skew are refused, naming the field', async (t) => {
  const s = await setup(t)
  const ahead = await s.signed('h1', [delivery('now', 'vm-a'), delivery('future', 'vm-a', Date.now() + 400_000)])
  const answer = await post(s.url, ahead.body, ahead.headers)
  t.equal(answer.status, 400)
  t.match(answer.json, { code: 'bad-request', retryable: false, detail: /^deliveries\[1\]\.to: data time .* ahead of this site's clock; at most 60 s/ })
  t.match(answer.json.refused, [{ index: 1, id: 'future', code: 'bad-request', retryable: false, detail: /^deliveries\[1\]\.to: data time/ }], 'the problem document lists the refused delivery: the other one was fine')
  t.equal(answer.json.refused.length, 1)
  const raw = { id: 'raw-future', vm: 'vm-a', metric: 'kpi:users.current_users', format: 'raw', from: Date.now(), to: Date.now(), samples: [{ ts: Date.now() + 800_000, value: 5000 }] }
  const samples = await s.signed('h1', [raw])
  t.match(await post(s.url, samples.body, samples.headers), { status: 400, json: { detail: /^deliveries\[0\]\.samples: / } })
  const slightly = await s.signed('h1', [delivery('skewed', 'vm-a', Date.now() + 30_000)])
  t.match(await post(s.url, slightly.body, slightly.headers), { status: 200 }, 'within the skew: a host clock a little ahead is fine')
  t.same(s.stored(), ['skewed'])
})

t.test('every refused delivery of a batch is listed, whatever is wrong with it; nothing of the batch is stored', async (t) => {
  const s = await setup(t)
  const batch = [delivery('ok-1', 'vm-a'), { ...delivery('bad-value', 'vm-a'), value: 'x' }, delivery('ahead', 'vm-a', Date.now() + 400_000), delivery('ok-2', 'vm-a'), 'not a delivery']
  const signed = await s.signed('h1', batch)
  const answer = await post(s.url, signed.body, signed.headers)
  t.equal(answer.status, 400)
  t.match(answer.json, { code: 'bad-request', retryable: false, detail: /^deliveries\[1\]\.value: / }, 'the message is the first one\'s')
  t.match(answer.json.refused, [
    { index: 1, id: 'bad-value', code: 'bad-request', retryable: false, detail: /^deliveries\[1\]\.value: / },
    { index: 2, id: 'ahead', detail: /^deliveries\[2\]\.to: data time/ },
    { index: 4, detail: /^deliveries\[4\]/ },
  ])
  t.equal(answer.json.refused.length, 3)
  t.notOk('id' in answer.json.refused[2], 'no id where the delivery had none')
  t.same(s.stored(), [])
  const rest = await s.signed('h1', batch.filter((_, i) => ![1, 2, 4].includes(i)))
  t.match(await post(s.url, rest.body, rest.headers), { status: 200, json: { accepted: 2 } }, 'the others, sent again without those listed, are taken')
  t.same(s.stored(), ['ok-1', 'ok-2'])
})
