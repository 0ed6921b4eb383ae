import { randomBytes } from 'node:crypto'
import { ProtocolError } from '../errors'
import type { TransferKey } from './transfer-certificate'
import type { TokenRecord, TokenStore } from './token-record'

/**
 * Every check of a transfer token, in one place: the data channel (source-server.ts) and the control
 * channel's operations (Initiate transfer, Transfer verification, cancel) use these and nothing else.
 */

/** 256 random bits, URL-safe: meaningless outside the proxy that issued it. */
export function newToken (): string {
  return randomBytes(32).toString('base64url')
}

/** A token (or an Intermediary's route) is for the site it was given to and the VM it was made for. */
export function checkHolder (record: { requester: string, vmId: string }, sender: string, vmId: string, what: 'offer' | 'transfer'): void {
  if (record.requester !== sender || record.vmId !== vmId) {
    throw new ProtocolError('token-foreign', what === 'offer' ? 'the offer was made to another site or for another VM' : 'the transfer was prepared for another site or VM')
  }
}

/** The checks every use of a token goes through; the order makes the most specific refusal win. */
export function usableToken (store: Pick<TokenStore, 'token'>, token: string | undefined, role: TokenRecord['role'], proxy: number | undefined, now = Date.now()): TokenRecord {
  const record = token === undefined || token.length > 100 ? undefined : store.token(token)
  if (record === undefined || record.role !== role || (proxy !== undefined && record.proxy !== proxy)) {
    throw new ProtocolError('token-unknown', 'the transfer token is not valid here')
  }
  if (record.state === 'cancelled') throw new ProtocolError('transfer-cancelled', 'the transfer was cancelled')
  if (record.state === 'spent') throw new ProtocolError('token-spent', 'the transfer token was already used')
  if (record.state === 'expired' || (record.state === 'open' && record.expiresAt < now)) throw new ProtocolError('token-expired', 'the transfer token has expired')
  return record
}

/**
 * A source token the Controller asks about in Transfer verification: a spent one still answers (the
 * Controller may ask again after a lost answer); its expiry is checked only before it is spent.
 */
export function verifiableSourceToken (store: Pick<TokenStore, 'token'>, token: string, sender: string, vmId: string): TokenRecord {
  const record = heldToken(store, token, 'source', sender, vmId)
  if (record.state === 'cancelled') throw new ProtocolError('transfer-cancelled', 'the transfer was cancelled')
  if (record.state === 'expired') throw new ProtocolError('token-expired', 'the transfer token has expired')
  return record
}

/** Whether an open source token may be spent now (a verified transfer). */
export function checkNotExpired (record: TokenRecord, now = Date.now()): void {
  if (record.expiresAt < now) throw new ProtocolError('token-expired', 'the transfer token has expired')
}

/** A source token the Controller cancels: anything but a verified (spent) transfer. */
export function cancellableSourceToken (store: Pick<TokenStore, 'token'>, token: string, sender: string, vmId: string): TokenRecord {
  const record = heldToken(store, token, 'source', sender, vmId)
  if (record.state === 'spent') throw new ProtocolError('token-spent', 'the transfer was already verified')
  return record
}

/**
 * A token of this role that `sender` holds for `vmId`, in whatever state: the caller checks the states
 * its operation allows (a destination token names an offer, a source token a transfer).
 */
export function heldToken (store: Pick<TokenStore, 'token'>, token: string, role: TokenRecord['role'], sender: string, vmId: string): TokenRecord {
  const record = token.length > 100 ? undefined : store.token(token)
  if (record === undefined || record.role !== role) throw new ProtocolError('token-unknown', 'the transfer token is not valid here')
  checkHolder(record, sender, vmId, role === 'destination' ? 'offer' : 'transfer')
  return record
}

/**
 * The keys a destination token's transfer is pulled with: the client certificate the Source's token
 * is bound to and the key its ticket is sealed for. A token that has none (it ended) cannot pull.
 */
export function destinationTransferKey (record: TokenRecord): TransferKey {
  if (record.role !== 'destination' || record.transferKey == null) throw new ProtocolError('token-unknown', 'the offer holds no transfer key: ask for a new offer')
  return record.transferKey
}
