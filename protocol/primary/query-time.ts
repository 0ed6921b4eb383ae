import { parseDurationText } from './duration-text'
import { MonitoringViewError } from './errors'

/**
 * A time on the command line: ISO 8601 ("2026-11-25T03:00:00Z"), Unix milliseconds, or a duration
 * before now ("10m", "2h", "30s": that long ago). Returns Unix milliseconds.
 */
export function parseQueryTime (text: string, option: string, now = Date.now()): number {
  const trimmed = text.trim()
  const ago = parseDurationText(trimmed)
  if (ago !== undefined) return now - ago
  if (/^\d{10,}$/.test(trimmed)) return Number(trimmed)
  // Only full dates: Date.parse also reads loose text ("1") as some year.
  if (/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(trimmed)) {
    const ms = Date.parse(trimmed)
    if (Number.isFinite(ms)) return ms
  }
  throw new MonitoringViewError('bad-time', `${option} ${JSON.stringify(text)} is neither an ISO time (2026-11-25T03:00:00Z), Unix milliseconds, nor a duration ago (10m, 2h, 30s)`)
}
