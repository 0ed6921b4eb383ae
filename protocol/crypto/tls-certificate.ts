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
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', String(TEN_YEARS_DAYS),
    '-subj', `/CN=${siteId}`, '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ])
  return fingerprintOf(await readFile(cert, 'utf8'))
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
