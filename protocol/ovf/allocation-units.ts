/**
 * rasd:AllocationUnits of a memory item as bytes per unit: DMTF's programmatic units (DSP0004 Annex C:
 * `byte`, `byte * 2^20`, `byte * 1024`), as ovftool and virt-v2v write them, and the older names VirtualBox
 * writes (`MegaBytes`), which OVF tools read as binary multiples. Undefined for anything else.
 */
export function bytesPerUnit (units: string): bigint | undefined {
  const text = units.trim()
  const legacy = LEGACY_NAMES[text.toLowerCase()]
  if (legacy !== undefined) return legacy
  const match = /^bytes?\s*(?:\*\s*([0-9]+)(?:\s*\^\s*([0-9]+))?)?$/i.exec(text)
  if (match === null) return undefined
  const [, base, exponent] = match
  if (base === undefined) return 1n
  if (exponent !== undefined && Number(exponent) > 64) return undefined
  return exponent === undefined ? BigInt(base) : BigInt(base) ** BigInt(exponent)
}

const LEGACY_NAMES: Readonly<Record<string, bigint>> = {
  kilobytes: 2n ** 10n,
  megabytes: 2n ** 20n,
  gigabytes: 2n ** 30n,
}

/** What fedvm writes: MiB, the descriptor's own unit. */
export const MIB_UNITS = 'byte * 2^20'
export const MIB = 2n ** 20n
