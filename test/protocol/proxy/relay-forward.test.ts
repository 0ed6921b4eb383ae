import t from 'tap'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { writeSealKeyPair } from '../../../protocol/crypto/key-files'
import { readTlsIdentity, writeTlsIdentity, type TlsIdentity } from '../../../protocol/crypto/tls-certificate'
import { readResponseBody, pinnedRequest } from '../../../protocol/http/pinned-request'
import { pullVm } from '../../../protocol/proxy/puller'
import { RelayTransfers } from '../../../protocol/proxy/relay-transfers'
import { createSourceServer } from '../../../protocol/proxy/source-server'
import { TOKEN_HEADER } from '../../../protocol/proxy/transfer-headers'
import { openTicket, sealTicket } from '../../../protocol/proxy/ticket'
import { SiteState } from '../../../protocol/site/site-state'
import { SourceProxy } from './support/source-proxy'

async function identity (dir: string, name: string): Promise<TlsIdentity> {
  await mkdir(dir, { recursive: true })
  await writeTlsIdentity(dir, name)
  return readTlsIdentity(dir)
}

// A real source proxy (A), a relaying proxy (B) in front of it, and C's and D's client certificates.
t.test('a relaying proxy serves its relay token to the Destination\'s certificate only, byte-exact', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-relay-forward-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const disk = randomBytes(3 * 65536 + 777)
  await writeFile(join(dir, 'disk.img'), disk)
  // SourceProxy's "destination" identity is B's: the Source's token is bound to B.
  const a = await SourceProxy.start(join(dir, 'a'), 'vm1', 65536, [{ name: 'disk.img', size: disk.length, path: join(dir, 'disk.img') }])
  t.teardown(async () => { await a.close(); a.state.close() })
  const b = a.dst
  const c = await identity(join(dir, 'c-tls'), 'c')
  const d = await identity(join(dir, 'd-tls'), 'd')
  const bSeal = await writeSealKeyPair(join(dir, 'b-seal'))
  const cSeal = await writeSealKeyPair(join(dir, 'c-seal'))

  let bUrl = ''
  const transfers = new RelayTransfers({ sealPublicKey: bSeal, tlsFingerprint: b.fingerprint, keysDir: join(dir, 'b-seal') }, () => bUrl, 600_000)
  const bEvents: Array<Record<string, unknown>> = []
  const bState = new SiteState(join(dir, 'b-state'))
  const server = createSourceServer({ index: 0, state: bState, tls: b, relay: { transfers, timeoutMs: 30_000 }, log: (e) => bEvents.push(e) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.close(() => { bState.close(); resolve() }); server.closeAllConnections() }))
  bUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}`

  transfers.substitute('ref', { sealKey: cSeal, tlsFingerprint: c.fingerprint })
  const resealed = await transfers.reseal('ref', await sealTicket(a.ticket, bSeal), 'vm1')
  const ticket = await openTicket(resealed!, join(dir, 'c-seal'), 'vm1')

  const asD = await pinnedRequest({ url: ticket.uri, fingerprint: ticket.fingerprint }, { method: 'GET', path: '/v1/transfer/files', headers: { [TOKEN_HEADER]: ticket.token }, clientCert: d, timeoutMs: 30_000 })
  t.equal(asD.statusCode, 403, 'another certificate is refused')
  t.match(JSON.parse((await readResponseBody(asD, 65536)).toString('utf8')), { code: 'token-foreign' })
  t.notOk(a.events.some((e) => e.event === 'proxy-connection'), 'and nothing was asked of the Source for it')

  const out = join(dir, 'out')
  await mkdir(out)
  const result = await pullVm({ ticket, dir: out, clientCert: c, parallel: 2, timeoutMs: 30_000 })
  t.equal(result.fetchedBytes, disk.length)
  t.ok((await readFile(join(out, 'disk.img'))).equals(disk), 'C received the file byte-exact through B')
  const aPeers = new Set(a.events.filter((e) => e.event === 'proxy-connection').map((e) => e.peer))
  t.same([...aPeers], [b.fingerprint], 'A\'s proxy saw B\'s certificate only')
  const bPeers = new Set(bEvents.filter((e) => e.event === 'proxy-connection').map((e) => e.peer))
  t.same([...bPeers].sort(), [c.fingerprint, d.fingerprint].sort(), 'B\'s proxy saw C and D')
})
