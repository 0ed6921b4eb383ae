/**
 * Whether a domain runs under KVM (`<domain type='kvm'>`) or under QEMU's TCG emulator
 * (`type='qemu'`): a live migration treats them differently (downtime-ramp.ts, tcg-switchover.ts).
 */

/** Read from the domain's XML element itself, never from text elsewhere in it (a name, a comment). */
export function underKvm (domainXml: string): boolean {
  return /^\s*(<\?xml[^>]*>\s*)?<domain\b[^>]*\btype=['"]kvm['"]/.test(domainXml)
}
