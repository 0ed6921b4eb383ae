/**
 * Pure parser of `virsh domstats --raw` text into the same records the RPC decoder gives (virsh
 * prints no uuid: it is left empty). Used to compare both paths on one capture and by bench/collect.
 */
import type { ParamValue, RawDomainStats } from './decode-domain-stats'

const HEADER = /^Domain: '(.*)'$/

export function parseVirshDomstats (text: string): RawDomainStats[] {
  const out: RawDomainStats[] = []
  let current: RawDomainStats | undefined
  for (const line of text.split('\n')) {
    const header = HEADER.exec(line)
    if (header !== null) {
      current = { name: header[1], uuid: '', params: new Map() }
      out.push(current)
      continue
    }
    const eq = line.indexOf('=')
    if (current === undefined || eq < 0) continue
    current.params.set(line.slice(0, eq).trim(), toValue(line.slice(eq + 1)))
  }
  return out
}

function toValue (text: string): ParamValue {
  if (/^-?\d+(\.\d+)?(e[+-]?\d+)?$/.test(text)) return Number(text)
  if (text === 'yes') return true
  if (text === 'no') return false
  return text
}
