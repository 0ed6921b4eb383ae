import t from 'tap'
import Database from 'better-sqlite3'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { readSigningKeyPair, sign } from '../../protocol/crypto/signing-keys'
import { requestSigningBytes } from '../../protocol/envelope/canonical'
import { hopSigningValue, type UnsignedHop } from '../../protocol/envelope/hop'
import { verifyResponse } from '../../protocol/envelope/signed-response'
import { decodeKey } from '../../protocol/crypto/key-files'
import { openTicket } from '../../protocol/proxy/ticket'
import { Federation } from '../protocol/support/federation'
import { post, proxyGet, signAs } from '../protocol/support/signed-client'
import { makeVmDir } from '../protocol/support/vm-files'

// Every security refusal against a real site process, each with no state changed.
t.test('security refusals', async (t) => {
  const fed = await Federation.create([
    { id: 'site-a', ip: '127.0.0.41', hosts: [{ id: 'a1', maxVms: 0 }], partners: ['site-b'] },
    { id: 'site-b', ip: '127.0.0.42', hosts: [{ id: 'b1', maxVms: 3 }], partners: ['site-a', 'site-x'], limits: { tokenTtlMs: 4000 } },
    { id: 'site-x', ip: '127.0.0.43', partners: ['site-b'] },
    { id: 'site-t', ip: '127.0.0.44' },
  ])
  t.teardown(() => fed.close())
  await fed.start('site-a', 'site-b')
  const db = (): Database.Database => new Database(join(fed.site('site-b').dir, 'state', 'site.db'), { readonly: true })
  const snapshot = (): string => {
    const d = db()
    try {
      return JSON.stringify(['tokens', 'locations', 'routes'].map((table) => d.prepare(`SELECT * FROM "${table}" ORDER BY 1`).all()))
    } finally { d.close() }
  }
  const bKey = decodeKey('b', fed.site('site-b').keys.publicKey)

  const request = await signAs(fed, 'site-a', 'site-b', 'migration-request', { vmId: 'vm1', descriptor: {} })
  const ok = await post(fed, 'site-b', 'migration-request', request)
  t.equal(ok.status, 200)
  t.equal(ok.json.offers.length, 1, 'a valid request gets an offer')
  await verifyResponse(ok.signature, 200, Buffer.from(JSON.stringify(ok.json)), { from: 'site-b', fromKey: bKey, to: 'site-a', replyTo: request.hops[0].id, windowMs: 30_000 })
  t.pass('the answer is signed by site-b for this request')
  const before = snapshot()

  const refusals: Array<[string, () => Promise<unknown>, string, number]> = [
    ['replayed message', async () => request, 'replayed-message', 409],
    ['bad signature', async () => { const r = await signAs(fed, 'site-a', 'site-b', 'migration-request', { vmId: 'vm1' }); r.hops[0].sig = Buffer.alloc(64, 7).toString('base64'); return r }, 'bad-signature', 401],
    ['missing signature', async () => { const r = await signAs(fed, 'site-a', 'site-b', 'migration-request', { vmId: 'vm1' }) as any; delete r.hops[0].sig; return r }, 'bad-signature', 401],
    ['no hops', async () => ({ op: 'migration-request', body: { vmId: 'vm1' }, hops: [] }), 'bad-signature', 401],
    ['unknown sender', async () => signAs(fed, 'site-t', 'site-b', 'migration-request', { vmId: 'vm1' }), 'unknown-sender', 401],
    ['tampered body', async () => { const r = await signAs(fed, 'site-a', 'site-b', 'migration-request', { vmId: 'vm1' }); (r.body as any).vmId = 'vm2'; return r }, 'bad-signature', 401],
    ['stale timestamp', async () => {
      const keys = await readSigningKeyPair(join(fed.site('site-a').dir, 'keys'))
      const hop: UnsignedHop = { from: 'site-a', to: 'site-b', id: 'stale-0000001', ts: Date.now() - 5 * 60_000, budget: 3 }
      const sig = await sign(requestSigningBytes(hopSigningValue('migration-request', { vmId: 'vm1' }, [], hop)), keys.secretKey)
      return { op: 'migration-request', body: { vmId: 'vm1' }, hops: [{ ...hop, sig: Buffer.from(sig).toString('base64') }] }
    }, 'stale-timestamp', 401],
    ['addressed to another site', async () => signAs(fed, 'site-a', 'site-x', 'migration-request', { vmId: 'vm1' }), 'misdirected', 421],
    ['oversized request', async () => Buffer.from(JSON.stringify({ op: 'migration-request', body: { pad: 'x'.repeat(300 * 1024) }, hops: [] })), 'request-too-large', 413],
    ['not JSON', async () => Buffer.from('{"op":'), 'bad-request', 400],
    ['admin operation from a partner', async () => signAs(fed, 'site-a', 'site-b', 'admin-status', {}), 'not-permitted', 403],
    ['path traversal in a VM id', async () => signAs(fed, 'site-a', 'site-b', 'migration-request', { vmId: '../../etc' }), 'bad-request', 400],
  ]
  for (const [what, make, code, status] of refusals) {
    const payload = await make()
    const op = what === 'admin operation from a partner' ? 'admin-status' : 'migration-request'
    const answer = await post(fed, 'site-b', op, payload)
    t.equal(answer.status, status, `${what}: HTTP ${status}`)
    t.match(answer.json, { code, retryable: false, type: `urn:fedvm:problem:${code}` }, `${what}: problem document ${code}`)
    t.match(answer.contentType, /application\/problem\+json/)
    t.ok(answer.signature, `${what}: the problem document is signed too`)
    t.equal(snapshot(), before, `${what}: no state changed`)
  }

  // Tokens. A VM placed on site-b by site-a; the test then acts as site-a's Controller, with
  // site-t's keys as the destination proxy.
  const image = join(fed.root, 'image')
  await makeVmDir(image, { 'disk.img': 300_000 })
  t.equal((await fed.cli('site-a', 'place', '--vm', 'vm9', '--dir', image)).code, 0, 'vm9 placed on site-b')
  const tDir = join(fed.site('site-t').dir, 'keys')
  const destination = { sealKey: fed.site('site-t').keys.sealPublicKey, tlsFingerprint: fed.site('site-t').keys.tlsFingerprint }
  const prepare = async (): Promise<{ token: string, uri: string, fingerprint: string }> => {
    const answer = await post(fed, 'site-b', 'forced-migration', await signAs(fed, 'site-a', 'site-b', 'forced-migration', { vmId: 'vm9', mode: 'prepare', destination }))
    t.equal(answer.status, 200, 'forced migration prepared')
    const ticket = await openTicket(answer.json.ticket, tDir, 'vm9')
    t.equal(ticket.token, answer.json.token)
    return ticket
  }
  const forcedByX = await post(fed, 'site-b', 'forced-migration', await signAs(fed, 'site-x', 'site-b', 'forced-migration', { vmId: 'vm9', mode: 'prepare', destination }))
  t.match(forcedByX.json, { code: 'not-permitted' }, 'only the site that delegated the VM may force it away')

  const first = await prepare()
  const manifest = await proxyGet(first.uri, first.fingerprint, '/v1/transfer/manifest', first.token, tDir)
  t.equal(manifest.status, 200, 'the bound destination reads the manifest')
  t.equal(manifest.json.files[0].name, 'disk.img')
  const foreign = await proxyGet(first.uri, first.fingerprint, '/v1/transfer/manifest', first.token, join(fed.site('site-x').dir, 'keys'))
  t.match(foreign.json, { code: 'token-foreign' }, 'another client certificate: foreign token')
  const unknown = await proxyGet(first.uri, first.fingerprint, '/v1/transfer/manifest', 'A'.repeat(43), tDir)
  t.match(unknown.json, { code: 'token-unknown' }, 'a made-up token')
  const traversal = await proxyGet(first.uri, first.fingerprint, '/v1/transfer/files/..%2F..%2Fsite.json', first.token, tDir)
  t.equal(traversal.status, 404, 'a file outside the manifest is not served')

  const cancel = await post(fed, 'site-b', 'transfer-cancel', await signAs(fed, 'site-a', 'site-b', 'transfer-cancel', { vmId: 'vm9', token: first.token }))
  t.match(cancel.json, { state: 'cancelled' })
  t.match((await proxyGet(first.uri, first.fingerprint, '/v1/transfer/manifest', first.token, tDir)).json, { code: 'transfer-cancelled' }, 'a cancelled token')

  const second = await prepare()
  const m2 = (await proxyGet(second.uri, second.fingerprint, '/v1/transfer/manifest', second.token, tDir)).json
  const wrong = { ...m2, files: m2.files.map((f: any) => ({ ...f, sha256: '0'.repeat(64) })) }
  const pending = await post(fed, 'site-b', 'transfer-verification', await signAs(fed, 'site-a', 'site-b', 'transfer-verification', { vmId: 'vm9', token: second.token, dstat: wrong }))
  t.match(pending.json, { state: 'pending' }, 'dstat ≠ sstat: not verified')
  t.ok(existsSync(join(fed.vmDir('site-b', 'b1'), 'vm9')), 'and the VM is still there')
  const byX = await post(fed, 'site-b', 'transfer-verification', await signAs(fed, 'site-x', 'site-b', 'transfer-verification', { vmId: 'vm9', token: second.token, dstat: m2 }))
  t.match(byX.json, { code: 'token-foreign' }, 'verification by a site that did not prepare the transfer')
  const verified = await post(fed, 'site-b', 'transfer-verification', await signAs(fed, 'site-a', 'site-b', 'transfer-verification', { vmId: 'vm9', token: second.token, dstat: m2 }))
  t.match(verified.json, { state: 'verified' })
  // Verified is not yet released: the Source lets the VM go on the Controller's confirm.
  const confirmed = await post(fed, 'site-b', 'transfer-confirm', await signAs(fed, 'site-a', 'site-b', 'transfer-confirm', { vmId: 'vm9', token: second.token }))
  t.match(confirmed.json, { state: 'confirmed' })
  t.match((await proxyGet(second.uri, second.fingerprint, '/v1/transfer/manifest', second.token, tDir)).json, { code: 'token-spent' }, 'a spent token')

  // A source token nobody uses expires: site-b asks site-a, which has no record of such a migration
  // (abort), so the VM is no longer held for leaving and stays where it is.
  await makeVmDir(join(fed.root, 'image12'), { 'disk.img': 1000 })
  t.equal((await fed.cli('site-a', 'place', '--vm', 'vm12', '--dir', join(fed.root, 'image12'))).code, 0, 'vm12 placed on site-b')
  const held = await post(fed, 'site-b', 'forced-migration', await signAs(fed, 'site-a', 'site-b', 'forced-migration', { vmId: 'vm12', mode: 'prepare', destination }))
  const heldTicket = await openTicket(held.json.ticket, tDir, 'vm12')
  t.ok(existsSync(join(fed.vmDir('site-b', 'b1'), '.leaving', 'vm12')), 'vm12 is held for leaving')

  // Destination tokens: bound to the site that asked and to the VM; they expire.
  const offer = await post(fed, 'site-b', 'migration-request', await signAs(fed, 'site-a', 'site-b', 'migration-request', { vmId: 'vm10' }))
  const ref = offer.json.offers[0].ref as string
  const byOther = await post(fed, 'site-b', 'initiate-transfer', await signAs(fed, 'site-x', 'site-b', 'initiate-transfer', { vmId: 'vm10', ticket: 'x' }, { ref }))
  t.match(byOther.json, { code: 'token-foreign' }, 'an offer used by another site')
  const otherVm = await post(fed, 'site-b', 'initiate-transfer', await signAs(fed, 'site-a', 'site-b', 'initiate-transfer', { vmId: 'vm11', ticket: 'x' }, { ref }))
  t.match(otherVm.json, { code: 'token-foreign' }, 'an offer used for another VM')
  await new Promise((resolve) => setTimeout(resolve, 4500))
  const expired = await post(fed, 'site-b', 'initiate-transfer', await signAs(fed, 'site-a', 'site-b', 'initiate-transfer', { vmId: 'vm10', ticket: 'x' }, { ref }))
  t.match(expired.json, { code: 'token-expired' }, 'an expired offer')
  await fed.daemon('site-b').waitForEvent((e) => e.event === 'in-doubt-resolved' && e.vm === 'vm12' && e.role === 'source' && e.decision === 'abort', 10_000)
  t.match((await proxyGet(heldTicket.uri, heldTicket.fingerprint, '/v1/transfer/manifest', heldTicket.token, tDir)).json, { code: 'transfer-cancelled' }, 'an expired source token, cancelled')
  t.notOk(existsSync(join(fed.vmDir('site-b', 'b1'), '.leaving', 'vm12')), 'vm12 is no longer held for leaving')
  t.ok(existsSync(join(fed.vmDir('site-b', 'b1'), 'vm12', 'disk.img')), 'and stays on site-b')
})
