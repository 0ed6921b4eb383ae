/**
 * What both live-migration benchmarks share: the peer (a direct `virsh migrate --live
 * --copy-storage-all` between two libvirtds in one namespace, TCP on its loopback, no proxies), a
 * host-clock downtime probe, and the median.
 */
import { execFile, spawn } from 'node:child_process'
import { mkdir, open, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { rewriteSourcePaths } from '../host/libvirt/lifecycle-xml'
import type { LibvirtHost } from '../test/support/vm/libvirt-host'

const run = promisify(execFile)
export const GUEST_IP = '192.0.2.10'
const PROBE_INTERVAL_MS = 20

/** One namespace with one bridge for both libvirtds: the guest's address stays reachable wherever it runs. */
export async function sharedNamespace (netns: string): Promise<() => Promise<unknown>> {
  await run('ip', ['netns', 'add', netns])
  for (const args of [['link', 'set', 'lo', 'up'], ['link', 'add', 'br0', 'type', 'bridge'], ['addr', 'add', '192.0.2.1/24', 'dev', 'br0'], ['link', 'set', 'br0', 'up']]) await run('ip', ['-n', netns, ...args])
  return async () => await run('ip', ['netns', 'del', netns])
}

/**
 * A host-clock probe for one round: busybox `ping -i 0.02` at the guest from inside the namespace.
 * Its output may be buffered in a pipe, so times come from the schedule, not from arrival: the
 * longest run of unanswered sequence numbers times the interval, or the longest round trip (a
 * request queued while the guest was paused), whichever is longer.
 */
export class PingProbe {
  private readonly seqs: number[] = []
  private maxRttMs = 0
  private readonly child
  private readonly closed: Promise<void>

  constructor (netns: string) {
    this.child = spawn('nsenter', [`--net=/run/netns/${netns}`, 'busybox', 'ping', '-i', String(PROBE_INTERVAL_MS / 1000), GUEST_IP], { stdio: ['ignore', 'pipe', 'ignore'] })
    let rest = ''
    this.child.stdout.on('data', (d: Buffer) => {
      const lines = (rest + d.toString()).split('\n')
      rest = lines.pop() ?? ''
      for (const line of lines) {
        const m = /bytes from .*seq=(\d+) .*time=([\d.]+) ms/.exec(line)
        if (m === null) continue
        this.seqs.push(Number(m[1]))
        this.maxRttMs = Math.max(this.maxRttMs, Number(m[2]))
      }
    })
    this.closed = new Promise((resolve) => this.child.once('close', () => resolve()))
  }

  /** Stops the probe (SIGINT: busybox flushes what it printed) and says the longest outage seen. */
  async outageMs (): Promise<number | undefined> {
    this.child.kill('SIGINT')
    await this.closed
    if (this.seqs.length < 2) return undefined
    let missing = 0
    for (let i = 1; i < this.seqs.length; i++) missing = Math.max(missing, this.seqs[i] - this.seqs[i - 1] - 1)
    return Math.round(Math.max(missing * PROBE_INTERVAL_MS, this.maxRttMs))
  }
}

export async function directMigrate (src: LibvirtHost, dst: LibvirtHost, name: string, dstDir: string): Promise<{ downtime?: number, elapsed?: number }> {
  const xml = rewriteSourcePaths(await src.virsh('dumpxml', name, '--migratable'), dstDir)
  await mkdir(dstDir, { recursive: true })
  const xmlFile = join(dstDir, 'migrate.xml')
  await writeFile(xmlFile, xml)
  const size = Number(/Capacity:\s+(\d+)/.exec(await src.virsh('domblkinfo', name, 'vda'))?.[1])
  const fd = await open(join(dstDir, `${name}.img`), 'w')
  await fd.truncate(size)
  await fd.close()
  await src.virsh('migrate', '--live', '--copy-storage-all', '--persistent', '--undefinesource', '--xml', xmlFile, name, dst.uri,
    '--migrateuri', 'tcp://127.0.0.1', '--disks-uri', 'tcp://127.0.0.1', '--listen-address', '127.0.0.1')
  // --keep-completed: a caller may read the completed job's other figures (memory passes) after this.
  const info = await dst.virsh('domjobinfo', name, '--completed', '--keep-completed')
  const ms = (label: string): number | undefined => { const m = new RegExp(`${label}:\\s+(\\d+)\\s+ms`).exec(info); return m === null ? undefined : Number(m[1]) }
  if (ms('Total downtime') === undefined) console.error(`no downtime in the Destination's completed job:\n${info}`)
  return { downtime: ms('Total downtime'), elapsed: ms('Time elapsed') }
}

export function median (values: number[]): number | undefined {
  if (values.length === 0) return undefined
  const s = [...values].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}
