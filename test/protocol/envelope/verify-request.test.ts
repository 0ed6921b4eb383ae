import t from 'tap'
import { generateSigningKeyPair, type SigningKeyPair } from '../../../protocol/crypto/signing-keys'
import { encodeKey } from '../../../protocol/crypto/key-files'
import { Keyring } from '../../../protocol/envelope/keyring'
import { MemoryReplayCache } from '../../../protocol/envelope/replay-cache'
import { signForward, signNewRequest } from '../../../protocol/envelope/sign-request'
import { verifyRequest, type VerifyOptions } from '../../../protocol/envelope/verify-request'
import type { SignedRequest } from '../../../protocol/envelope/hop'
import { ProtocolError } from '../../../protocol/errors'

const ids = ['site-a', 'site-b', 'site-c', 'site-x'] as const
type Id = typeof ids[number]

async function keys (): Promise<Record<Id, SigningKeyPair>> {
  const out = {} as Record<Id, SigningKeyPair>
  for (const id of ids) out[id] = await generateSigningKeyPair()
  return out
}

function signer (k: Record<Id, SigningKeyPair>, id: Id): { id: string, secretKey: Uint8Array } {
  return { id, secretKey: k[id].secretKey }
}

function options (k: Record<Id, SigningKeyPair>, me: Id, knows: Id[], extra: Partial<VerifyOptions> = {}): VerifyOptions {
  return {
    me, keyring: new Keyring(knows.map((id) => ({ id, publicKey: k[id].publicKey }))), replay: new MemoryReplayCache(),
    windowMs: 30_000, chainWindowMs: 300_000, maxHops: 8, ...extra,
  }
}

async function rejects (t: { ok: (v: unknown, m: string) => void, equal: (a: unknown, b: unknown, m: string) => void, fail: (m: string) => void }, promise: Promise<unknown>, code: string, what: string): Promise<void> {
  try {
    await promise
    t.fail(`${what}: accepted`)
  } catch (err) {
    t.ok(err instanceof ProtocolError, `${what}: a ProtocolError`)
    t.equal((err as ProtocolError).code, code, what)
  }
}

const copy = (r: SignedRequest): SignedRequest => JSON.parse(JSON.stringify(r))

t.test('a request signed by a known partner verifies once', async (t) => {
  const k = await keys()
  const req = await signNewRequest(signer(k, 'site-a'), 'site-b', 'migration-request', { vmId: 'vm1' }, 3)
  const opts = options(k, 'site-b', ['site-a'])
  const v = await verifyRequest(copy(req), opts)
  t.equal(v.sender, 'site-a')
  t.equal(v.origin, 'site-a')
  await rejects(t, verifyRequest(copy(req), opts), 'replayed-message', 'the same message id again')
})

t.test('every refusal of a single hop', async (t) => {
  const k = await keys()
  const req = await signNewRequest(signer(k, 'site-a'), 'site-b', 'migration-request', { vmId: 'vm1' }, 3)

  const badSig = copy(req)
  const sig = Buffer.from(badSig.hops[0].sig, 'base64'); sig[5] ^= 1
  badSig.hops[0].sig = sig.toString('base64')
  await rejects(t, verifyRequest(badSig, options(k, 'site-b', ['site-a'])), 'bad-signature', 'a flipped signature bit')

  const noSig = copy(req) as unknown as { hops: Array<Record<string, unknown>> }
  delete noSig.hops[0].sig
  await rejects(t, verifyRequest(noSig, options(k, 'site-b', ['site-a'])), 'bad-signature', 'a missing signature')
  await rejects(t, verifyRequest({ op: 'migration-request', body: {}, hops: [] }, options(k, 'site-b', ['site-a'])), 'bad-signature', 'no hop at all')

  const tampered = copy(req); (tampered.body as { vmId: string }).vmId = 'vm2'
  await rejects(t, verifyRequest(tampered, options(k, 'site-b', ['site-a'])), 'bad-signature', 'a tampered body')

  const otherOp = copy(req); otherOp.op = 'forced-migration'
  await rejects(t, verifyRequest(otherOp, options(k, 'site-b', ['site-a'])), 'bad-signature', 'the signature is for another operation')

  await rejects(t, verifyRequest(copy(req), options(k, 'site-b', ['site-c'])), 'unknown-sender', 'a sender not in the keyring')
  const forged = await signNewRequest(signer(k, 'site-x'), 'site-b', 'migration-request', { vmId: 'vm1' }, 3)
  forged.hops[0].from = 'site-a'
  await rejects(t, verifyRequest(forged, options(k, 'site-b', ['site-a'])), 'bad-signature', 'signed by another key than the sender\'s')

  await rejects(t, verifyRequest(copy(req), options(k, 'site-c', ['site-a'])), 'misdirected', 'addressed to another site')
  await rejects(t, verifyRequest(copy(req), options(k, 'site-b', ['site-a'], { now: Date.now() + 60_000 })), 'stale-timestamp', 'a timestamp a minute old')
  await rejects(t, verifyRequest(copy(req), options(k, 'site-b', ['site-a'], { now: Date.now() - 60_000 })), 'stale-timestamp', 'a timestamp a minute ahead')
  await rejects(t, verifyRequest({ op: 1, body: {}, hops: [] }, options(k, 'site-b', ['site-a'])), 'bad-request', 'a malformed request')
})

t.test('a forwarded chain verifies end to end, even where the origin is not a partner', async (t) => {
  const k = await keys()
  const req = await signNewRequest(signer(k, 'site-a'), 'site-b', 'migration-request', { vmId: 'vm1' }, 3)
  const atB = await verifyRequest(copy(req), options(k, 'site-b', ['site-a']))
  const fwd = await signForward(signer(k, 'site-b'), atB.request, 'site-c', atB.senderKey)
  t.equal(fwd.hops.length, 2)
  t.equal(fwd.hops[1].budget, 2, 'the budget goes down by one')
  const atC = await verifyRequest(copy(fwd), options(k, 'site-c', ['site-b']))
  t.equal(atC.sender, 'site-b')
  t.equal(atC.origin, 'site-a')
})

t.test('a tampered hop chain is refused', async (t) => {
  const k = await keys()
  const req = await signNewRequest(signer(k, 'site-a'), 'site-b', 'migration-request', { vmId: 'vm1' }, 3)
  const atB = await verifyRequest(copy(req), options(k, 'site-b', ['site-a']))

  // B attests a key that is not A's (it let an impostor's hop in): C knows A and sees the mismatch.
  const impostor = await signNewRequest(signer(k, 'site-x'), 'site-b', 'migration-request', { vmId: 'vm1' }, 3)
  impostor.hops[0].from = 'site-a'
  const laundered = await signForward(signer(k, 'site-b'), impostor, 'site-c', encodeKey(k['site-x'].publicKey))
  await rejects(t, verifyRequest(laundered, options(k, 'site-c', ['site-a', 'site-b'])), 'tampered-hop-chain', 'an attested key that is not the origin\'s')

  // An earlier hop whose signature does not verify under the attested key.
  const broken = copy(req)
  const sig = Buffer.from(broken.hops[0].sig, 'base64'); sig[0] ^= 1
  broken.hops[0].sig = sig.toString('base64')
  const fwdBroken = await signForward(signer(k, 'site-b'), broken, 'site-c', atB.senderKey)
  await rejects(t, verifyRequest(fwdBroken, options(k, 'site-c', ['site-b'])), 'tampered-hop-chain', 'a bad signature on an earlier hop')

  // A forwarder that does not attest the previous key.
  const unattested = await signForward(signer(k, 'site-b'), atB.request, 'site-c', atB.senderKey)
  delete unattested.hops[1].prevKey
  await rejects(t, verifyRequest(unattested, options(k, 'site-c', ['site-b'])), 'bad-signature', 'a hop edited after signing')

  // An earlier hop removed: the last signature covered it.
  const fwd = await signForward(signer(k, 'site-b'), atB.request, 'site-c', atB.senderKey)
  const dropped = copy(fwd); dropped.hops.shift()
  await rejects(t, verifyRequest(dropped, options(k, 'site-c', ['site-b'])), 'bad-signature', 'an earlier hop dropped')

  // The first hop was addressed elsewhere than the site that forwarded it.
  const toX = await signNewRequest(signer(k, 'site-a'), 'site-x', 'migration-request', { vmId: 'vm1' }, 3)
  const stolen = await signForward(signer(k, 'site-b'), toX, 'site-c', atB.senderKey)
  await rejects(t, verifyRequest(stolen, options(k, 'site-c', ['site-b'])), 'tampered-hop-chain', 'a hop addressed to another site')
})

t.test('the hop budget stops delegation loops', async (t) => {
  const k = await keys()
  const req = await signNewRequest(signer(k, 'site-a'), 'site-b', 'migration-request', { vmId: 'vm1' }, 0)
  const atB = await verifyRequest(copy(req), options(k, 'site-b', ['site-a']))
  await rejects(t, signForward(signer(k, 'site-b'), atB.request, 'site-c', atB.senderKey), 'hop-budget-exhausted', 'forwarding with no budget left')
  const negative = await signNewRequest(signer(k, 'site-a'), 'site-b', 'migration-request', { vmId: 'vm1' }, -1)
  await rejects(t, verifyRequest(negative, options(k, 'site-b', ['site-a'])), 'hop-budget-exhausted', 'a request whose budget is negative')
  await rejects(t, verifyRequest(copy(req), options(k, 'site-b', ['site-a'], { maxHops: 0 })), 'hop-budget-exhausted', 'more hops than accepted')

  // A chain that comes back to a site it passed.
  const r = await signNewRequest(signer(k, 'site-a'), 'site-b', 'migration-request', { vmId: 'vm1' }, 3)
  const b = await verifyRequest(copy(r), options(k, 'site-b', ['site-a']))
  const toA = await signForward(signer(k, 'site-b'), b.request, 'site-a', b.senderKey)
  await rejects(t, verifyRequest(toA, options(k, 'site-a', ['site-b'])), 'loop-detected', 'a request coming back to its origin')
})

t.test('a body holding a number beyond a double (1e400) is a bad request, not an internal error', async (t) => {
  const k = await keys()
  const req = await signNewRequest(signer(k, 'site-a'), 'site-b', 'migration-request', { vmId: 'vm1', n: 1 }, 3)
  // What arrives on the wire: the text 1e400, which JSON.parse reads as Infinity.
  const received = JSON.parse(JSON.stringify(req).replace('"n":1', '"n":1e400'))
  await rejects(t, verifyRequest(received, options(k, 'site-b', ['site-a'])), 'bad-request', '1e400 in the body')
})
