import t from 'tap'
import { generateSigningKeyPair } from '../../../protocol/crypto/signing-keys'
import { signResponse, verifyResponse } from '../../../protocol/envelope/signed-response'

t.test('an answer is bound to its signer, its requester, the request it answers and its body', async (t) => {
  const b = await generateSigningKeyPair()
  const x = await generateSigningKeyPair()
  const body = Buffer.from('{"offers":[]}')
  const header = await signResponse({ id: 'site-b', secretKey: b.secretKey }, 'site-a', 'msg-00000001', 200, body)
  const expected = { from: 'site-b', fromKey: b.publicKey, to: 'site-a', replyTo: 'msg-00000001', windowMs: 30_000 }
  await verifyResponse(header, 200, body, expected)
  t.pass('the right answer verifies')
  const cases: Array<[string, () => Promise<void>]> = [
    ['no signature', () => verifyResponse(undefined, 200, body, expected)],
    ['another body', () => verifyResponse(header, 200, Buffer.from('{"offers":[1]}'), expected)],
    ['another status', () => verifyResponse(header, 500, body, expected)],
    ['another request', () => verifyResponse(header, 200, body, { ...expected, replyTo: 'msg-00000002' })],
    ['another signer key', () => verifyResponse(header, 200, body, { ...expected, fromKey: x.publicKey })],
    ['garbage header', () => verifyResponse('!!!', 200, body, expected)],
  ]
  for (const [what, promise] of cases) {
    await t.rejects(promise, { name: 'ProtocolError', code: 'bad-response' }, what)
  }
})
