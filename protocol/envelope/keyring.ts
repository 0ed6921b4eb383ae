import { decodeKey, encodeKey } from '../crypto/key-files'

/** The sites this site trusts: id → Ed25519 public key. The site itself is in it too (admin requests). */
export class Keyring {
  private readonly keys = new Map<string, Uint8Array>()

  constructor (entries: Array<{ id: string, publicKey: string | Uint8Array }>) {
    for (const entry of entries) {
      const key = typeof entry.publicKey === 'string' ? decodeKey(`public key of ${entry.id}`, entry.publicKey) : entry.publicKey
      this.keys.set(entry.id, key)
    }
  }

  get (id: string): Uint8Array | undefined {
    return this.keys.get(id)
  }

  encoded (id: string): string | undefined {
    const key = this.keys.get(id)
    return key === undefined ? undefined : encodeKey(key)
  }
}
