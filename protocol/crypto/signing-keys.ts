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

export async function sign (message: Uint8Array, secretKey: Uint8Array): Promise<Uint8Array> {
  const na = await ready()
  return na.crypto_sign_detached(message, secretKey)
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
