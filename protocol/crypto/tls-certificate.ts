import { execFile } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'

/**
 * The site's TLS identity for its endpoints and transfer proxies: an ECDSA P-256 key and a self-signed
 * certificate. Partners pin it by its SHA-256 fingerprint, so no CA is involved. Made with Debian's
 * `openssl` CLI (the npm alternatives need a global reflect-metadata polyfill or RSA in pure JS).
 */
export const TLS_KEY_FILE = 'tls.key'
export const TLS_CERT_FILE = 'tls.crt'
const TEN_YEARS_DAYS = 3650
/** openssl req's arguments for a fresh ECDSA P-256 key (no passphrase) and its self-signed certificate. */
const NEW_SELF_SIGNED_P256 = ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
const PEM_BLOCK = /-----BEGIN ([A-Z ]+)-----[\s\S]+?-----END \1-----\n?/g

export interface TlsIdentity {
  key: string
  cert: string
  /** SHA-256 fingerprint, colon-separated upper-case hex (the form node's getPeerCertificate() gives). */
  fingerprint: string
}

export async function writeTlsIdentity (dir: string, siteId: string): Promise<string> {
  const key = join(dir, TLS_KEY_FILE)
  const cert = join(dir, TLS_CERT_FILE)
  await promisify(execFile)('openssl', [
    ...NEW_SELF_SIGNED_P256,
    '-keyout', key, '-out', cert, '-days', String(TEN_YEARS_DAYS),
    '-subj', `/CN=${siteId}`, '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ])
  return fingerprintOf(await readFile(cert, 'utf8'))
}

/** A TLS identity kept in memory only: openssl prints the key to a pipe, never to a file. */
export async function makeTlsIdentity (subject: string, days: number): Promise<TlsIdentity> {
  const { stdout } = await promisify(execFile)('openssl', [
    ...NEW_SELF_SIGNED_P256, '-keyout', '-', '-out', '-', '-days', String(days), '-subj', subject,
  ], { encoding: 'utf8' })
  const blocks = new Map([...stdout.matchAll(PEM_BLOCK)].map((m) => [m[1], m[0]]))
  const key = blocks.get('PRIVATE KEY')
  const cert = blocks.get('CERTIFICATE')
  if (key === undefined || cert === undefined) throw new Error(`openssl req printed no key and certificate for ${subject}`)
  return { key, cert, fingerprint: fingerprintOf(cert) }
}

export async function readTlsIdentity (dir: string): Promise<TlsIdentity> {
  const key = await readFile(join(dir, TLS_KEY_FILE), 'utf8')
  const cert = await readFile(join(dir, TLS_CERT_FILE), 'utf8')
  return { key, cert, fingerprint: fingerprintOf(cert) }
}

export function fingerprintOf (certPem: string): string {
  return new X509Certificate(certPem).fingerprint256
}

/** Fingerprints are compared in one canonical form whatever case or separators a config used. */
export function normalizeFingerprint (text: string): string | undefined {
  const hex = text.replace(/^sha256:/i, '').replace(/[:\s]/g, '').toUpperCase()
  if (!/^[0-9A-F]{64}$/.test(hex)) return undefined
  return hex.match(/../g)!.join(':')
}
