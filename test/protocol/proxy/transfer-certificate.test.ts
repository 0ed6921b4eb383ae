import t from 'tap'
import { X509Certificate } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect, createServer, type TLSSocket } from 'node:tls'
import { openTicketWith, sealTicket } from '../../../protocol/proxy/ticket'
import { makeTransferKey, transferSealKeys } from '../../../protocol/proxy/transfer-certificate'
import type { TokenRecord } from '../../../protocol/proxy/token-record'
import { destinationTransferKey } from '../../../protocol/proxy/tokens'
import { SiteState } from '../../../protocol/site/site-state'

t.test('a transfer key: a client certificate whose fingerprint the server sees, and a sealing pair for the ticket', async (t) => {
  const [key, other] = await Promise.all([makeTransferKey(), makeTransferKey()])
  t.not(key.tls.fingerprint, other.tls.fingerprint, 'every key is new')
  t.not(key.seal.publicKey, other.seal.publicKey)
  t.equal(new X509Certificate(key.tls.cert).subject, 'CN=fedvm transfer', 'the certificate names no site')

  // A TLS server asking for client certificates, as the source proxy does: it sees the fingerprint the offer named.
  const server = createServer({ key: other.tls.key, cert: other.tls.cert, requestCert: true, rejectUnauthorized: false }, (socket) => {
    socket.end((socket.getPeerCertificate().fingerprint256 ?? 'none') + '\n')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const seen = await new Promise<string>((resolve, reject) => {
    const socket: TLSSocket = connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, key: key.tls.key, cert: key.tls.cert, rejectUnauthorized: false })
    let text = ''
    socket.on('data', (d: Buffer) => { text += d.toString() })
    socket.on('end', () => resolve(text.trim()))
    socket.on('error', reject)
  })
  t.equal(seen, key.tls.fingerprint, 'the server sees the transfer certificate\'s fingerprint')

  const sealed = await sealTicket({ vmId: 'vm1', uri: 'https://127.0.0.1:1', fingerprint: other.tls.fingerprint, token: 'tok' }, key.seal.publicKey)
  t.match(await openTicketWith(sealed, transferSealKeys(key), 'vm1'), { token: 'tok' }, 'a ticket sealed for the offer opens with the transfer key')
  await t.rejects(openTicketWith(sealed, transferSealKeys(other), 'vm1'), { code: 'bad-request' }, 'and with no other')
})

t.test('the site state keeps a destination token\'s transfer key across a restart and drops it when the token ends', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-transfer-key-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const key = await makeTransferKey()
  const record = (token: string): TokenRecord => ({
    token, role: 'destination', proxy: 0, vmId: 'vm1', hostId: 'h1', boundTo: 'site-a', descriptor: null, manifest: null,
    state: 'open', expiresAt: Date.now() + 60_000, locationVersion: null, requester: 'site-a', transferKey: key,
  })
  const first = new SiteState(dir)
  for (const token of ['received', 'spent', 'cancelled', 'expired']) first.putToken(record(token))
  first.close()
  const state = new SiteState(dir)
  t.teardown(() => state.close())
  t.same(destinationTransferKey(state.token('received')!), key, 'kept across a restart: a restarted Destination pulls with it')
  state.setTokenState('received', 'received')
  t.same(state.token('received')!.transferKey, key, 'received: still kept (the Controller may ask again)')
  for (const end of ['spent', 'cancelled', 'expired'] as const) {
    state.setTokenState(end, end)
    t.equal(state.token(end)!.transferKey, null, `${end}: the private key is gone`)
    t.throws(() => destinationTransferKey(state.token(end)!), { code: 'token-unknown' }, `${end}: nothing to pull with`)
  }
})
