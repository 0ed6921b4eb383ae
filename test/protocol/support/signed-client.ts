import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { readSigningKeyPair } from '../../../protocol/crypto/signing-keys'
import { readTlsIdentity } from '../../../protocol/crypto/tls-certificate'
import { signNewRequest } from '../../../protocol/envelope/sign-request'
import type { SignedRequest } from '../../../protocol/envelope/hop'
import { pinnedRequest, readResponseBody } from '../../../protocol/http/pinned-request'
import type { Federation } from './federation'

export interface RawAnswer {
  status: number
  json: any
  signature: string | undefined
  contentType: string | undefined
}

/** Signs a request as `from` (with that site's real keys from the federation) addressed to `to`. */
export async function signAs (fed: Federation, from: string, to: string, op: string, body: unknown, options: { budget?: number, ref?: string } = {}): Promise<SignedRequest> {
  const keys = await readSigningKeyPair(join(fed.site(from).dir, 'keys'))
  return signNewRequest({ id: from, secretKey: keys.secretKey }, to, op, body, options.budget ?? 3, options.ref)
}

/** POSTs anything (a signed request, or bytes) to a running site, pinned to its certificate. */
export async function post (fed: Federation, to: string, op: string, payload: unknown | Buffer): Promise<RawAnswer> {
  const site = fed.site(to)
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(JSON.stringify(payload))
  const res = await pinnedRequest({ url: `https://${site.config.listen as string}`, fingerprint: site.keys.tlsFingerprint }, {
    method: 'POST', path: `/v1/${op}`, headers: { 'content-type': 'application/json' }, body, timeoutMs: 60_000,
  })
  const answer = await readResponseBody(res, 4 * 1024 * 1024)
  let json: unknown
  try { json = JSON.parse(answer.toString('utf8')) } catch { json = answer.toString('utf8') }
  const signature = res.headers['fedvm-signature']
  return { status: res.statusCode ?? 0, json, signature: Array.isArray(signature) ? signature[0] : signature, contentType: res.headers['content-type'] }
}

/** GETs from a transfer proxy with a token, presenting a client certificate (from a keys directory). */
export async function proxyGet (url: string, fingerprint: string, path: string, token: string, clientKeysDir: string): Promise<RawAnswer> {
  const tls = await readTlsIdentity(clientKeysDir)
  const res = await pinnedRequest({ url, fingerprint }, {
    method: 'GET', path, headers: { 'fedvm-token': token }, clientCert: { key: tls.key, cert: tls.cert }, timeoutMs: 30_000,
  })
  const answer = await readResponseBody(res, 64 * 1024 * 1024)
  let json: unknown
  try { json = JSON.parse(answer.toString('utf8')) } catch { json = answer }
  return { status: res.statusCode ?? 0, json, signature: undefined, contentType: res.headers['content-type'] }
}

export async function readText (file: string): Promise<string> {
  return (await readFile(file, 'utf8')).trim()
}
