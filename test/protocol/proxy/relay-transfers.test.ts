import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { writeSealKeyPair } from '../../../protocol/crypto/key-files'
import { RelayTransfers } from '../../../protocol/proxy/relay-transfers'
import { openTicket, sealTicket } from '../../../protocol/proxy/ticket'

const fingerprint = (byte: string): string => Array.from({ length: 32 }, () => byte).join(':')
const A_FP = fingerprint('AA')
const B_FP = fingerprint('BB')
const C_FP = fingerprint('CC')
const B_PROXY = 'https://127.0.0.42:4443'

t.test('an Intermediary relaying an offer re-seals the Source\'s ticket for the Destination, naming its own proxy', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'fedvm-relay-'))
  t.teardown(() => rm(root, { recursive: true, force: true }))
  const bKeys = join(root, 'b')
  const cKeys = join(root, 'c')
  const bSeal = await writeSealKeyPair(bKeys)
  const cSeal = await writeSealKeyPair(cKeys)
  let now = 1_000_000
  const relay = new RelayTransfers({ sealPublicKey: bSeal, tlsFingerprint: B_FP, keysDir: bKeys }, () => B_PROXY, 60_000, () => now)

  const offer = { ref: 'b-ref', sealKey: cSeal, tlsFingerprint: C_FP, depth: 1, free: 3 }
  t.same(relay.substitute('b-ref', offer), { ref: 'b-ref', sealKey: bSeal, tlsFingerprint: B_FP, depth: 1, free: 3 }, 'the offer passed on carries B\'s keys, the rest as it was')

  const sourceTicket = await sealTicket({ vmId: 'vm1', uri: 'https://127.0.0.41:5555', fingerprint: A_FP, token: 'a-token' }, bSeal)
  t.equal(await relay.reseal('other-ref', sourceTicket, 'vm1'), undefined, 'an offer not relayed here passes its ticket on as it is')

  const resealed = await relay.reseal('b-ref', sourceTicket, 'vm1')
  t.type(resealed, 'string')
  const forC = await openTicket(resealed!, cKeys, 'vm1')
  t.equal(forC.uri, B_PROXY, 'C pulls from B\'s proxy')
  t.equal(forC.fingerprint, B_FP, 'and pins B\'s certificate')
  t.not(forC.token, 'a-token', 'with a relay token, not the Source\'s')
  t.notOk(JSON.stringify(forC).includes('127.0.0.41'), 'C\'s ticket never names A\'s proxy')
  t.match(relay.transfer(forC.token), { vmId: 'vm1', boundTo: C_FP, upstream: { uri: 'https://127.0.0.41:5555', fingerprint: A_FP, token: 'a-token' } }, 'B\'s proxy pulls from A for C\'s certificate only')
  await t.rejects(openTicket(resealed!, bKeys, 'vm1'), { code: 'bad-request' }, 'only C can open the new ticket')

  await t.rejects(relay.reseal('b-ref', await sealTicket({ vmId: 'vm1', uri: 'https://x:1', fingerprint: A_FP, token: 't' }, cSeal), 'vm1'), { code: 'bad-request' }, 'a ticket not sealed for B is refused')
  await t.rejects(relay.reseal('b-ref', sourceTicket, 'vm2'), { code: 'bad-request' }, 'a ticket for another VM is refused')

  now += 60_001
  t.equal(relay.transfer(forC.token), undefined, 'the relay token expires with the transfer token lifetime')
  t.equal(relay.transfer(undefined), undefined)
})
