import { ProtocolError } from '../errors'
import type { TokenRecord, TokenStore } from './token-record'
import type { Manifest } from './manifest'
import { SourceTransfer } from './source-transfer'

/** A source token's manifest, hashed from its planned files when no transfer asked for it yet, and kept with the token. */
export async function sourceManifest (state: Pick<TokenStore, 'setTokenManifest'>, record: TokenRecord): Promise<Manifest> {
  if (record.manifest !== null) return record.manifest
  if (record.plan == null) throw new ProtocolError('token-unknown', 'the transfer is not prepared')
  const manifest = await new SourceTransfer(record.vmId, record.plan).manifest()
  state.setTokenManifest(record.token, manifest)
  return manifest
}
