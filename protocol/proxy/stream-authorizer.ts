/**
 * The policy of the stream relay at a Source proxy (stream-relay.ts only joins streams): a parked
 * stream connection is accepted only with an open source token of this proxy, from the destination
 * certificate the token is bound to, and for a live migration's channels. The relay parks it under
 * the token, so a connection can only ever be joined to the VM that token was prepared for.
 */
import { ProtocolError } from '../errors'
import { PERFORMED_CHANNEL } from './stream-signal'
import type { AuthorizeStream } from './stream-relay'
import type { TokenStore } from './token-record'
import { usableToken } from './tokens'

/** The channels a live migration opens: QEMU's migration stream, the NBD disk stream, and the Source's "Perform done". */
export const STREAM_CHANNELS: ReadonlySet<string> = new Set(['migration', 'nbd', PERFORMED_CHANNEL])

export function sourceStreamAuthorizer (store: Pick<TokenStore, 'token'>, proxy: number, now: () => number = Date.now): AuthorizeStream {
  return (token, channel, peerFingerprint) => {
    if (!STREAM_CHANNELS.has(channel)) throw new ProtocolError('unknown-operation', `no stream channel ${channel}`)
    const record = usableToken(store, token, 'source', proxy, now())
    if (record.state !== 'open') throw new ProtocolError('token-spent', 'the transfer is no longer open')
    if (peerFingerprint === undefined || peerFingerprint !== record.boundTo) throw new ProtocolError('token-foreign', 'the token is bound to another destination')
    return record.token
  }
}
