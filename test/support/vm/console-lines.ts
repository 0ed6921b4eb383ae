/**
 * What a guest's serial console says about why it stopped: its oops, panic and boot lines. As TAP
 * text they must hold no control characters: a serial console's lines end in \r and may carry escape
 * sequences, which could read as line breaks and what follows as TAP itself (a kernel's
 * "---[ end trace" as a YAML block).
 */
export function tellingConsoleLines (console: string, limit = 40): string {
  const telling = console.split('\n')
    .filter((line) => /Oops|panic|BUG|RIP:|Comm:|reboot|Linux version|fedvm-guest/.test(line))
    .map((line) => line.replace(/[\x00-\x1f\x7f]/g, ' ').trim())
  return telling.length === 0 ? '(nothing telling)' : telling.slice(-limit).join(' | ')
}
