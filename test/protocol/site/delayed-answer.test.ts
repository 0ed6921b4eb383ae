import t from 'tap'
import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateSigningKeyPair, sign, type SigningKeyPair } from '../../../protocol/crypto/signing-keys'
import { readTlsIdentity, writeTlsIdentity, type TlsIdentity } from '../../../protocol/crypto/tls-certificate'
import type { SignedRequest } from '../../../protocol/envelope/hop'
import { Keyring } from '../../../protocol/envelope/keyring'
import { responseSigningBytes } from '../../../protocol/envelope/canonical'
import { RESPONSE_SIGNATURE_HEADER } from '../../../protocol/envelope/signed-response'
import { SignedPartners } from '../../../protocol/site/partners'

/** The answer's signature as signResponse makes it, dated `ts` (the time the partner signed it by its clock). */
async function signedAt (keys: SigningKeyPair, to: string, replyTo: string, body: Buffer, ts: number): Promise<string> {
  const fields = { from: 'site-b', to, replyTo, ts, status: 200, bodySha256: createHash('sha256').update(body).digest('base64') }
  const sig = Buffer.from(await sign(responseSigningBytes(fields), keys.secretKey)).toString('base64')
  return Buffer.from(JSON.stringify({ ...fields, sig })).toString('base64url')
}

/**
 * A partner behind a real HTTPS server that signs its answer when the request arrives and sends it
 * `delayMs(n)` later (n: the request's number): an answer held up on the way, as the caller sees it.
 * `clockMs` shifts the time it signs with (a partner whose clock is off).
 */
async function slowPartner (t: { teardown: (fn: () => Promise<void>) => void }, tls: TlsIdentity, keys: SigningKeyPair, delayMs: (n: number) => number, clockMs = 0): Promise<{ url: string, requests: SignedRequest[] }> {
  const requests: SignedRequest[] = []
  const server: Server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const request = JSON.parse(Buffer.concat(chunks).toString('utf8')) as SignedRequest
      requests.push(request)
      const body = Buffer.from(JSON.stringify({ offers: [], n: requests.length }))
      const hop = request.hops[request.hops.length - 1]
      signedAt(keys, hop.from, hop.id, body, Date.now() + clockMs).then((signature) => {
        setTimeout(() => {
          res.writeHead(200, { 'content-type': 'application/json', [RESPONSE_SIGNATURE_HEADER]: signature })
          res.end(body)
        }, delayMs(requests.length))
      }, (err: Error) => res.destroy(err))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, requests }
}

t.test('a signed answer that arrives after the freshness window is refused, never acted on', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-delayed-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeTlsIdentity(dir, 'site-b')
  const bTls = await readTlsIdentity(dir)
  const a = await generateSigningKeyPair()
  const b = await generateSigningKeyPair()
  const events: Array<Record<string, unknown>> = []
  const partnersOf = (url: string, windowMs: number): SignedPartners => new SignedPartners(
    { id: 'site-a', listen: '127.0.0.1:1', signing: a, tls: bTls },
    [{ id: 'site-b', url, tlsFingerprint: bTls.fingerprint, publicKey: Buffer.from(b.publicKey).toString('base64') }] as never,
    new Keyring([{ id: 'site-b', publicKey: b.publicKey }]),
    { hopBudget: 3, timestampWindowMs: windowMs, requestTimeoutMs: 20_000 },
    (event) => events.push(event),
  )

  // The window is the site's limits.timestampWindowMs (30 s by default); 1.5 s here, so the answers wait 2 s, not 31.
  const WINDOW = 1500
  const late = await slowPartner(t, bTls, b, () => WINDOW + 500)
  await t.rejects(partnersOf(late.url, WINDOW).send('site-b', 'migration-request', { vmId: 'vm1' }, undefined),
    { name: 'ProtocolError', code: 'stale-timestamp', message: /site-b's clock is 2 s behind this site's; at most 1\.5 s is accepted/ },
    'every answer late: refused as stale, its offers never returned')
  t.equal(late.requests.length, 2, 'a late answer is asked for once more, signed afresh')
  t.not(late.requests[0].hops[0].id, late.requests[1].hops[0].id, 'the second request is a new message')
  t.ok(events.some((e) => e.event === 'send-resigned' && e.to === 'site-b'), 'the re-signed request is logged')

  const once = await slowPartner(t, bTls, b, (n) => n === 1 ? WINDOW + 500 : 0)
  t.match(await partnersOf(once.url, WINDOW).send('site-b', 'migration-request', { vmId: 'vm1' }, undefined), { offers: [], n: 2 },
    'only the first answer late: the fresh answer to the second request is the one taken')

  const inTime = await slowPartner(t, bTls, b, () => WINDOW - 1000)
  t.match(await partnersOf(inTime.url, WINDOW).send('site-b', 'migration-request', { vmId: 'vm1' }, undefined), { offers: [], n: 1 }, 'an answer within the window is taken')
  t.equal(inTime.requests.length, 1)

  // With the default window (30 s): an answer dated 31 s before it arrives and that came at once (a partner
  // whose clock is behind): refused, and not asked again (a new request would be answered the same).
  const skewed = await slowPartner(t, bTls, b, () => 0, -31_000)
  await t.rejects(partnersOf(skewed.url, 30_000).send('site-b', 'migration-request', { vmId: 'vm1' }, undefined),
    { name: 'ProtocolError', code: 'stale-timestamp', message: /31 s behind this site's; at most 30 s is accepted/ }, 'signed 31 s before it arrived: refused')
  t.equal(skewed.requests.length, 1, 'and not asked again (it answered at once: its clock is off)')
})
