import { createPrivateKey, sign as cryptoSign, type KeyObject } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ready } from './sealed-box'
import { decodeKey, encodeKey } from './key-files'

/** A site's Ed25519 identity: every request and answer it sends is signed with the secret key. */
export interface SigningKeyPair {
  publicKey: Uint8Array
  /** libsodium's 64-byte form (seed followed by the public key). */
  secretKey: Uint8Array
}

export const SIGN_PUBLIC_FILE = 'sign.pub'
export const SIGN_SECRET_FILE = 'sign.key'
const SIGNATURE_BYTES = 64

export async function generateSigningKeyPair (): Promise<SigningKeyPair> {
  const na = await ready()
  const { publicKey, privateKey } = na.crypto_sign_keypair()
  return { publicKey, secretKey: privateKey }
}

/**
 * Ed25519 signatures are deterministic, so OpenSSL's (node:crypto) are byte for byte libsodium's;
 * it signs ~3x faster than libsodium's WebAssembly, which counts for the monitoring relay's
 * hundreds of signed requests (and answers) a second. The key object is built once per secret key.
 */
export async function sign (message: Uint8Array, secretKey: Uint8Array): Promise<Uint8Array> {
  return cryptoSign(null, message, signingKeyObject(secretKey))
}

/** PKCS#8 DER of an Ed25519 private key is this prefix followed by the 32-byte seed (RFC 8410). */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const keyObjects = new WeakMap<Uint8Array, KeyObject>()

function signingKeyObject (secretKey: Uint8Array): KeyObject {
  let key = keyObjects.get(secretKey)
  if (key === undefined) {
    // libsodium's 64-byte secret key is the seed followed by the public key.
    key = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, secretKey.subarray(0, 32)]), format: 'der', type: 'pkcs8' })
    keyObjects.set(secretKey, key)
  }
  return key
}

/** False for any malformed signature or key: a verifier never throws on attacker-supplied bytes. */
export async function verify (message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): Promise<boolean> {
  const na = await ready()
  if (signature.length !== SIGNATURE_BYTES || publicKey.length !== 32) return false
  try {
    return na.crypto_sign_verify_detached(signature, message, publicKey)
  } catch {
    return false
  }
}

/** Writes sign.key (the 32-byte seed, owner-only) and sign.pub; refuses to overwrite. */
export async function writeSigningKeyPair (dir: string): Promise<string> {
  const na = await ready()
  const seed = na.randombytes_buf(32)
  const keys = na.crypto_sign_seed_keypair(seed)
  await writeFile(join(dir, SIGN_SECRET_FILE), `${encodeKey(seed)}\n`, { mode: 0o600, flag: 'wx' })
  await writeFile(join(dir, SIGN_PUBLIC_FILE), `${encodeKey(keys.publicKey)}\n`, { flag: 'wx' })
  return encodeKey(keys.publicKey)
}

export async function readSigningKeyPair (dir: string): Promise<SigningKeyPair> {
  const na = await ready()
  const file = join(dir, SIGN_SECRET_FILE)
  const seed = decodeKey(`signing key in ${file}`, await readFile(file, 'utf8'))
  const keys = na.crypto_sign_seed_keypair(seed)
  return { publicKey: keys.publicKey, secretKey: keys.privateKey }
}
