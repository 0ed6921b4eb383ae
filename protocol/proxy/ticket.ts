import { join } from 'node:path'
import { decodeKey, readSealKeyPair, SEAL_SECRET_FILE } from '../crypto/key-files'
import { seal, unseal, type BoxKeyPair } from '../crypto/sealed-box'
import { ProtocolError } from '../errors'

/**
 * ⟨suri, stok⟩ as the Controller and Intermediaries carry it: sealed for the key the destination's
 * offer carried (made for that transfer), so only the destination proxy learns the source proxy's
 * address (the files flow directly; the Controller stays unaware of where the VM is).
 */
export interface SourceTicket {
  kind: 'fedvm-source-ticket'
  vmId: string
  uri: string
  fingerprint: string
  token: string
  /**
   * A live migration's Begin (libvirt's migratable XML, its neutralised cookie in base64, the disks'
   * names, formats and sizes): sealed with the rest, so Intermediaries and the Controller never read it.
   */
  live?: { xml: string, cookie: string, disks: Array<{ name: string, format: 'raw' | 'qcow2', bytes: number }>, memoryBytes: number }
}

export async function sealTicket (ticket: Omit<SourceTicket, 'kind'>, destinationSealKey: string): Promise<string> {
  const key = decodeKey('destination sealKey', destinationSealKey)
  const sealed = await seal(Buffer.from(JSON.stringify({ kind: 'fedvm-source-ticket', ...ticket })), key)
  return sealed.toString('base64')
}

/** Opens a ticket sealed for this site's own key (an Intermediary that relays: its offers carry that key). */
export async function openTicket (sealed: string, keysDir: string, vmId: string): Promise<SourceTicket> {
  return await openTicketWith(sealed, await readSealKeyPair(join(keysDir, SEAL_SECRET_FILE)), vmId)
}

/** Opens a ticket with the key pair it was sealed for (a Destination: the transfer key its offer carried). */
export async function openTicketWith (sealed: string, keys: BoxKeyPair, vmId: string): Promise<SourceTicket> {
  let ticket: SourceTicket
  try {
    ticket = JSON.parse((await unseal(Buffer.from(sealed, 'base64'), keys)).toString('utf8'))
  } catch (err) {
    throw new ProtocolError('bad-request', 'the source ticket was not sealed for this offer', { cause: err })
  }
  if (ticket.kind !== 'fedvm-source-ticket' || ticket.vmId !== vmId || typeof ticket.uri !== 'string' ||
    typeof ticket.fingerprint !== 'string' || typeof ticket.token !== 'string') {
    throw new ProtocolError('bad-request', 'the source ticket is not for this VM')
  }
  return ticket
}
