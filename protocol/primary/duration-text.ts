import ms from 'ms'

/**
 * A duration written with its unit ("30s", "10m", "1.5h", "250ms"; the `ms` package's units). A bare
 * number is refused: "for 30" could mean seconds or milliseconds, so the unit is required.
 */
export function parseDurationText (text: string): number | undefined {
  const trimmed = text.trim()
  if (!/^\d+(\.\d+)?\s*[a-z]+$/i.test(trimmed)) return undefined
  const value = ms(trimmed as ms.StringValue)
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.round(value) : undefined
}
