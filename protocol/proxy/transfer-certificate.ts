import { execFile } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { promisify } from 'node:util'
import { decodeKey, encodeKey } from '../crypto/key-files'
import { generateBoxKeyPair, type BoxKeyPair } from '../crypto/sealed-box'

/**
 * The Destination's keys for one Migration request's offers: a fresh ECDSA P-256 key with a
 * self-signed certificate (its proxy's TLS client certificate when it pulls, what the Source binds
 * its token to) and a fresh sealing key pair (what the Source's ticket is sealed for). Offers carry
 * only their public halves, so the sites that see them (the Controller, the Source, Intermediaries)
 * hold nothing that names the Destination beyond that one transfer; its site certificate and sealing
 * key never leave it. Made with Debian's `openssl` CLI like the site certificate; the key goes
 * through a pipe, never a file.
 */
export interface TransferKey {
  tls: { key: string, cert: string, fingerprint: string }
  /** The sealing key pair, base64 (the form offers and key files use). */
  seal: { publicKey: string, secretKey: string }
}

/** The certificate outlives any token (a token lives minutes); nobody checks its dates, only its fingerprint. */
const VALID_DAYS = 7
const PEM_BLOCK = /-----BEGIN ([A-Z ]+)-----[\s\S]+?-----END \1-----\n?/g

export async function makeTransferKey (): Promise<TransferKey> {
  const { stdout } = await promisify(execFile)('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', '-', '-out', '-', '-days', String(VALID_DAYS), '-subj', '/CN=fedvm transfer',
  ], { encoding: 'utf8' })
  const blocks = new Map([...stdout.matchAll(PEM_BLOCK)].map((m) => [m[1], m[0]]))
  const key = blocks.get('PRIVATE KEY')
  const cert = blocks.get('CERTIFICATE')
  if (key === undefined || cert === undefined) throw new Error('openssl req printed no key and certificate for the transfer')
  const seal = await generateBoxKeyPair()
  return {
    tls: { key, cert, fingerprint: new X509Certificate(cert).fingerprint256 },
    seal: { publicKey: encodeKey(seal.publicKey), secretKey: encodeKey(seal.secretKey) },
  }
}

/** The sealing key pair a ticket for this transfer is opened with. */
export function transferSealKeys (key: TransferKey): BoxKeyPair {
  return { publicKey: decodeKey('transfer seal public key', key.seal.publicKey), secretKey: decodeKey('transfer seal secret key', key.seal.secretKey) }
}
