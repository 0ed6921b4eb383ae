import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { nkeys } from '@nats-io/transport-node'
import { decodeKey, encodeKey } from './key-files'
import { ready } from './sealed-box'

/** File names of a VM host's Ed25519 key pair: its agent signs monitoring batches with host.key. */
export const HOST_SECRET_FILE = 'host.key'
export const HOST_PUBLIC_FILE = 'host.pub'
/** The host's NATS user (an nkey seed, SU…): nats-server's config gives its public key (U…) the host's subjects. */
export const HOST_NKEY_FILE = 'host.nk'

/** Writes host.key (the 32-byte seed, owner-only) and host.pub into dir; refuses to overwrite. Returns the public key. */
export async function writeHostKeyPair (dir: string): Promise<string> {
  const na = await ready()
  const seed = na.randombytes_buf(32)
  const keys = na.crypto_sign_seed_keypair(seed)
  await writeFile(join(dir, HOST_SECRET_FILE), `${encodeKey(seed)}\n`, { mode: 0o600, flag: 'wx' })
  await writeFile(join(dir, HOST_PUBLIC_FILE), `${encodeKey(keys.publicKey)}\n`, { flag: 'wx' })
  return encodeKey(keys.publicKey)
}

/** Writes host.nk (owner-only) into dir; refuses to overwrite. Returns the NATS user's public key (U…). */
export async function writeHostNkey (dir: string): Promise<string> {
  const user = nkeys.createUser()
  await writeFile(join(dir, HOST_NKEY_FILE), `${new TextDecoder().decode(user.getSeed())}\n`, { mode: 0o600, flag: 'wx' })
  return user.getPublicKey()
}

/** The 64-byte secret key (libsodium's form, as signing-keys.ts signs with) from a host.key file. */
export async function readHostSecretKey (file: string): Promise<Uint8Array> {
  const na = await ready()
  const seed = decodeKey(`host key in ${file}`, await readFile(file, 'utf8'))
  return na.crypto_sign_seed_keypair(seed).privateKey
}
