/**
 * Pure readers of what a domain or a machine offers in memory and vCPUs, from libvirt's own output:
 * a domain XML's `<memory>`/`<vcpu>`, and `virsh nodeinfo` / `virsh dominfo` text.
 */
export interface Resources {
  memoryMiB: number
  vcpus: number
}

// libvirt's memory units (formatdomain "Memory Allocation"); KiB when none is given.
const UNIT_BYTES: Record<string, number> = {
  b: 1, bytes: 1,
  kb: 1e3, k: 1024, kib: 1024,
  mb: 1e6, m: 1024 ** 2, mib: 1024 ** 2,
  gb: 1e9, g: 1024 ** 3, gib: 1024 ** 3,
  tb: 1e12, t: 1024 ** 4, tib: 1024 ** 4,
}

/** The domain XML's `<memory>` (its maximum, rounded up to MiB) and `<vcpu>` count; undefined parts are missing. */
export function domainResources (xml: string): Partial<Resources> {
  const result: Partial<Resources> = {}
  const memory = /<memory\b([^>]*)>\s*(\d+)\s*<\/memory>/.exec(xml)
  if (memory !== null) {
    const unit = /\bunit=(?:'([^']*)'|"([^"]*)")/.exec(memory[1])
    const bytes = UNIT_BYTES[(unit?.[1] ?? unit?.[2] ?? 'KiB').toLowerCase()]
    if (bytes !== undefined) result.memoryMiB = Math.ceil(Number(memory[2]) * bytes / 1024 ** 2)
  }
  const vcpu = /<vcpu\b[^>]*>\s*(\d+)\s*<\/vcpu>/.exec(xml)
  if (vcpu !== null) result.vcpus = Number(vcpu[1])
  return result
}

/** `virsh nodeinfo`: the machine's CPUs and memory. */
export function parseNodeInfo (text: string): Resources {
  const cpus = /^CPU\(s\):\s*(\d+)/m.exec(text)
  const memory = /^Memory size:\s*(\d+)\s*KiB/m.exec(text)
  if (cpus === null || memory === null) throw new Error(`virsh nodeinfo printed no CPU(s) or Memory size: ${text.slice(0, 200)}`)
  return { memoryMiB: Math.floor(Number(memory[1]) / 1024), vcpus: Number(cpus[1]) }
}

/** Several `virsh dominfo` answers in a row: each domain's maximum memory and vCPUs. */
export function parseDomInfos (text: string): Resources[] {
  const result: Resources[] = []
  for (const block of text.split(/^(?=Id:)/m)) {
    const cpus = /^CPU\(s\):\s*(\d+)/m.exec(block)
    const memory = /^Max memory:\s*(\d+)\s*KiB/m.exec(block)
    if (cpus === null || memory === null) continue
    result.push({ memoryMiB: Math.ceil(Number(memory[1]) / 1024), vcpus: Number(cpus[1]) })
  }
  return result
}
