import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { decodeKey, SEAL_SECRET_FILE } from '../crypto/key-files'
import { publicKeyOf, unseal, type BoxKeyPair } from '../crypto/sealed-box'
import { parseExact } from '../exact-json'
import type { Delivery, SampleNumber } from '../relay/delivery'
import { MonitoringViewError } from './errors'

/** A delivery as the primary site reads it: sealed payloads opened. Never logged when `wasSealed`. */
export interface OpenedDelivery {
  id: string
  vm: string
  metric: string
  format: 'raw' | 'processed'
  function?: string
  from: number
  to: number
  /** Raw samples; a value sealed by the application itself (`encrypted/`) is its text when not a number. */
  samples?: Array<{ ts: number, value: SampleNumber | string }>
  value?: number
  wasSealed: boolean
}

/**
 * Opens sealed deliveries with the primary site's seal.key (from its keys directory). Without the key
 * only unsealed deliveries can be read: opening a sealed one is a clear error, not a silent gap.
 */
export class SealedOpener {
  private constructor (private readonly keys: BoxKeyPair | undefined, readonly keyFile: string) {}

  /** Reads KEYS/seal.key; a missing file is allowed (found out when a sealed delivery is read), a malformed one is not. */
  static async load (keysDir: string): Promise<SealedOpener> {
    const file = join(keysDir, SEAL_SECRET_FILE)
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new SealedOpener(undefined, file)
      throw new MonitoringViewError('seal-key-invalid', `${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err })
    }
    let secretKey: Uint8Array
    try {
      secretKey = decodeKey(file, text)
    } catch (err) {
      throw new MonitoringViewError('seal-key-invalid', `${file} is not a seal key (base64, 32 bytes, as fedvm keygen writes it)`, { cause: err })
    }
    return new SealedOpener({ secretKey, publicKey: await publicKeyOf(secretKey) }, file)
  }

  get hasKey (): boolean {
    return this.keys !== undefined
  }

  async open (d: Delivery): Promise<OpenedDelivery> {
    const base: OpenedDelivery = { id: d.id, vm: d.vm, metric: d.metric, format: d.format, ...(d.function ? { function: d.function } : {}), from: d.from, to: d.to, wasSealed: d.sealed !== undefined }
    if (d.sealed === undefined) return { ...base, ...(d.samples ? { samples: d.samples } : {}), ...(d.value !== undefined ? { value: d.value } : {}) }
    if (this.keys === undefined) {
      throw new MonitoringViewError('seal-key-missing', `delivery ${d.id} is sealed and ${this.keyFile} is missing: only the primary site's seal key opens it`)
    }
    let plain: Buffer
    try {
      plain = await unseal(Buffer.from(d.sealed, 'base64'), this.keys)
    } catch (err) {
      throw new MonitoringViewError('sealed-unreadable', `delivery ${d.id}: the sealed value does not open with ${this.keyFile} (sealed for another key, or altered)`, { cause: err })
    }
    return { ...base, ...payloadOf(plain, d) }
  }
}

/**
 * What a sealed payload holds: the agent seals `{samples}` or `{function, value}` (`encrypt: true`);
 * an `encrypted/` KPI is the application's own sealed bytes, one sample at the delivery's time.
 */
function payloadOf (plain: Buffer, d: Delivery): Pick<OpenedDelivery, 'samples' | 'value'> {
  const text = new TextDecoder('utf-8', { fatal: false }).decode(plain)
  let json: unknown
  try {
    json = parseExact(text)
  } catch {
    json = undefined // not the agent's JSON: an application's sealed value
  }
  if (typeof json === 'object' && json !== null) {
    const o = json as Record<string, unknown>
    if (Array.isArray(o.samples)) return { samples: o.samples.filter(isSample) }
    if (typeof o.value === 'number') return { value: o.value }
  }
  const trimmed = text.trim()
  const number = trimmed === '' ? NaN : Number(trimmed)
  return { samples: [{ ts: d.from, value: Number.isFinite(number) ? number : trimmed }] }
}

function isSample (s: unknown): s is { ts: number, value: SampleNumber | string } {
  const v = s as { ts?: unknown, value?: unknown }
  return typeof v === 'object' && v !== null && typeof v.ts === 'number' && (typeof v.value === 'number' || typeof v.value === 'bigint' || typeof v.value === 'string')
}
