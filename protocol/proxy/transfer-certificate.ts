import { decodeKey, encodeKey } from '../crypto/key-files'
import { generateBoxKeyPair, type BoxKeyPair } from '../crypto/sealed-box'
import { makeTlsIdentity, type TlsIdentity } from '../crypto/tls-certificate'

/**
 * The Destination's keys for one Migration request's offers: a fresh ECDSA P-256 key with a
 * self-signed certificate (its proxy's TLS client certificate when it pulls, what the Source binds
 * its token to) and a fresh sealing key pair (what the Source's ticket is sealed for). Offers carry
 * only their public halves, so the sites that see them (the Controller, the Source, Intermediaries)
 * hold nothing that names the Destination beyond that one transfer; its site certificate and sealing
 * key never leave it. The certificate is made as the site's is (crypto/tls-certificate.ts), in memory only.
 */
export interface TransferKey {
  tls: TlsIdentity
  /** The sealing key pair, base64 (the form offers and key files use). */
  seal: { publicKey: string, secretKey: string }
}

/** The certificate outlives any token (a token lives minutes); nobody checks its dates, only its fingerprint. */
const VALID_DAYS = 7

export async function makeTransferKey (): Promise<TransferKey> {
  const tls = await makeTlsIdentity('/CN=fedvm transfer', VALID_DAYS)
  const seal = await generateBoxKeyPair()
  return {
    tls,
    seal: { publicKey: encodeKey(seal.publicKey), secretKey: encodeKey(seal.secretKey) },
  }
}

/** The sealing key pair a ticket for this transfer is opened with. */
export function transferSealKeys (key: TransferKey): BoxKeyPair {
  return { publicKey: decodeKey('transfer seal public key', key.seal.publicKey), secretKey: decodeKey('transfer seal secret key', key.seal.secretKey) }
}
