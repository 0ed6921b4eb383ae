import { randomBytes } from 'node:crypto'
import { ProtocolError } from '../errors'
import type { SiteState, TokenRecord } from '../state/site-state'

/** 256 random bits, URL-safe: meaningless outside the proxy that issued it. */
export function newToken (): string {
  return randomBytes(32).toString('base64url')
}

/** The checks every use of a token goes through; the order makes the most specific refusal win. */
export function usableToken (state: SiteState, token: string | undefined, role: TokenRecord['role'], proxy: number | undefined, now = Date.now()): TokenRecord {
  const record = token === undefined || token.length > 100 ? undefined : state.token(token)
  if (record === undefined || record.role !== role || (proxy !== undefined && record.proxy !== proxy)) {
    throw new ProtocolError('token-unknown', 'the transfer token is not valid here')
  }
  if (record.state === 'cancelled') throw new ProtocolError('transfer-cancelled', 'the transfer was cancelled')
  if (record.state === 'spent') throw new ProtocolError('token-spent', 'the transfer token was already used')
  if (record.state === 'expired' || (record.state === 'open' && record.expiresAt < now)) throw new ProtocolError('token-expired', 'the transfer token has expired')
  return record
}
