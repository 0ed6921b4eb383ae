import sodium from 'libsodium-wrappers'
import { SEALED_BOX_OVERHEAD } from './sealed-box-size'

/**
 * Sealed boxes (libsodium crypto_box_seal): anyone with the primary site's public key can seal a
 * value; only the holder of its secret key can open it. Used for `encrypted/` KPIs and `encrypt: true`.
 */
export interface BoxKeyPair {
  publicKey: Uint8Array
  secretKey: Uint8Array
}

const KEY_BYTES = 32

export async function ready (): Promise<typeof sodium> {
  await sodium.ready
  return sodium
}

export async function generateBoxKeyPair (): Promise<BoxKeyPair> {
  const na = await ready()
  const { publicKey, privateKey } = na.crypto_box_keypair()
  return { publicKey, secretKey: privateKey }
}

export async function seal (value: Uint8Array, publicKey: Uint8Array): Promise<Buffer> {
  const na = await ready()
  checkKey('public key', publicKey)
  return Buffer.from(na.crypto_box_seal(value, publicKey))
}

/** Opens a sealed value; throws if it was not sealed for this key pair or was altered. */
export async function unseal (sealed: Uint8Array, keys: BoxKeyPair): Promise<Buffer> {
  const na = await ready()
  checkKey('public key', keys.publicKey)
  checkKey('secret key', keys.secretKey)
  if (sealed.length < SEALED_BOX_OVERHEAD) throw new Error(`sealed value is ${sealed.length} bytes; a sealed box has at least ${SEALED_BOX_OVERHEAD}`)
  try {
    return Buffer.from(na.crypto_box_seal_open(sealed, keys.publicKey, keys.secretKey))
  } catch (err) {
    throw new Error('cannot open the sealed value: it was sealed for another key or altered', { cause: err })
  }
}

/** The public key that belongs to a secret key (crypto_box keys are X25519). */
export async function publicKeyOf (secretKey: Uint8Array): Promise<Uint8Array> {
  const na = await ready()
  checkKey('secret key', secretKey)
  return na.crypto_scalarmult_base(secretKey)
}

function checkKey (what: string, key: Uint8Array): void {
  if (key.length !== KEY_BYTES) throw new Error(`${what} must be ${KEY_BYTES} bytes, got ${key.length}`)
}

/** Synchronous sealing, for use inside a database transaction; `await ready()` must have run first. */
export function sealSync (value: Uint8Array, publicKey: Uint8Array): Buffer {
  checkKey('public key', publicKey)
  return Buffer.from(sodium.crypto_box_seal(value, publicKey))
}
