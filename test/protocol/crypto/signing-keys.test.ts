import t from 'tap'
import { randomBytes } from 'node:crypto'
import { ready } from '../../../protocol/crypto/sealed-box'
import { generateSigningKeyPair, sign, verify } from '../../../protocol/crypto/signing-keys'

// sign() uses node:crypto (OpenSSL); Ed25519 is deterministic, so its signatures must equal
// libsodium's byte for byte, and verify (libsodium) must accept them.
t.test('node:crypto signatures equal libsodium\'s', async (t) => {
  const na = await ready()
  for (let i = 0; i < 20; i++) {
    const keys = await generateSigningKeyPair()
    const message = randomBytes(i * 97)
    const signature = await sign(message, keys.secretKey)
    t.same(Buffer.from(signature), Buffer.from(na.crypto_sign_detached(message, keys.secretKey)))
    t.ok(await verify(message, signature, keys.publicKey))
    message[0] ^= 1
    if (message.length > 0) t.notOk(await verify(message, signature, keys.publicKey))
  }
})
