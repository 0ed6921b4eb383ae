import { readFile, writeFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { generateBoxKeyPair, publicKeyOf, type BoxKeyPair } from './sealed-box'

/** File names of a site's sealing key pair inside its key directory. */
export const SEAL_PUBLIC_FILE = 'seal.pub'
export const SEAL_SECRET_FILE = 'seal.key'

/** Keys are exchanged as base64 text; a value that is not 32 bytes of base64 is refused by name. */
export function decodeKey (what: string, text: string): Uint8Array {
  const trimmed = text.trim()
  const bytes = Buffer.from(trimmed, 'base64')
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed) || bytes.length !== 32) {
    throw new Error(`${what} is not a base64 32-byte key`)
  }
  return new Uint8Array(bytes)
}

export function encodeKey (key: Uint8Array): string {
  return Buffer.from(key).toString('base64')
}

/** Reads a secret key file (base64); the public half is derived from it. */
export async function readSealKeyPair (file: string): Promise<BoxKeyPair> {
  const secretKey = decodeKey(`secret key in ${file}`, await readFile(file, 'utf8'))
  return { secretKey, publicKey: await publicKeyOf(secretKey) }
}

/** Writes a new sealing key pair into dir (secret readable by its owner only); returns the public key. */
export async function writeSealKeyPair (dir: string): Promise<string> {
  const keys = await generateBoxKeyPair()
  await mkdir(dir, { recursive: true, mode: 0o700 })
  await writeFile(join(dir, SEAL_SECRET_FILE), `${encodeKey(keys.secretKey)}\n`, { mode: 0o600, flag: 'wx' })
  await writeFile(join(dir, SEAL_PUBLIC_FILE), `${encodeKey(keys.publicKey)}\n`, { flag: 'wx' })
  return encodeKey(keys.publicKey)
}
