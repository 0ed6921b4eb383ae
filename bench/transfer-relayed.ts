// bench/transfer-relayed: the cost of relayed transfers. A → B → C on loopback, a VM of random data
// (256 MiB by default) placed by A on C through B, alternately with B relaying the files
// (policy.relayTransfers: every byte crosses B's proxy) and without (A's proxy to C's directly), in
// the same run; the ratio of the medians is the relay's cost.
// Usage: node dist/bench/transfer-relayed.js [--mib N] [--rounds N]   (writes bench/results/transfer-relayed.json)
import { randomFillSync } from 'node:crypto'
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Federation } from '../test/protocol/support/federation'

const REPO = join(__dirname, '..', '..')
const MiB = 1024 * 1024

async function makeRandomFile (file: string, bytes: number): Promise<void> {
  const handle = await open(file, 'w')
  const buf = Buffer.allocUnsafe(16 * MiB)
  for (let done = 0; done < bytes; done += buf.length) {
    randomFillSync(buf)
    await handle.write(buf, 0, Math.min(buf.length, bytes - done))
  }
  await handle.close()
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

async function main (): Promise<void> {
  const { values } = parseArgs({ options: { mib: { type: 'string', default: '256' }, rounds: { type: 'string', default: '2' } } })
  const bytes = Number(values.mib) * MiB
  const rounds = Number(values.rounds)
  const root = await mkdtemp(join(REPO, '.bench-relayed-'))
  const fed = await Federation.create([
    { id: 'site-a', ip: '127.0.0.71', hosts: [{ id: 'a1', maxVms: 0 }], partners: ['site-b'] },
    { id: 'site-b', ip: '127.0.0.72', partners: ['site-a', 'site-c'], policy: { delegate: true, expose: 'all' } },
    { id: 'site-c', ip: '127.0.0.73', hosts: [{ id: 'c1', maxVms: 2 * rounds }], partners: ['site-b'] },
  ])
  const runs: Record<'direct' | 'relayed', Array<{ ms: number, transferMs: number }>> = { direct: [], relayed: [] }
  try {
    await fed.start()
    let relaying = false
    for (let round = 0; round < rounds; round++) {
      for (const mode of ['direct', 'relayed'] as const) {
        if ((mode === 'relayed') !== relaying) {
          relaying = mode === 'relayed'
          await fed.stop('site-b')
          await fed.reconfigure('site-b', (config) => { config.policy.relayTransfers = relaying })
          await fed.start('site-b')
        }
        const vm = `${mode}-${round}`
        const image = join(root, vm)
        await mkdir(image)
        await makeRandomFile(join(image, 'disk.img'), bytes)
        await writeFile(join(image, 'domain.xml'), '<domain/>\n')
        const placed = await fed.cli('site-a', 'place', '--vm', vm, '--dir', image)
        if (placed.code !== 0 || placed.json.digestsAgree !== true) throw new Error(`${mode} placement failed: ${placed.raw.stdout}${placed.raw.stderr}`)
        const received = fed.daemon('site-c').events().find((e) => e.event === 'transfer-received' && e.vm === vm)!
        runs[mode].push({ ms: placed.json.durationMs as number, transferMs: received.ms as number })
        await rm(image, { recursive: true, force: true })
      }
    }
    const summary = (mode: 'direct' | 'relayed') => {
      const ms = median(runs[mode].map((r) => r.ms))
      return { runs: runs[mode], medianMs: ms, mibPerSecond: Math.round((bytes / MiB) / (ms / 1000)) }
    }
    const direct = summary('direct')
    const relayed = summary('relayed')
    const results = {
      bytes,
      rounds,
      direct,
      relayed,
      // > 1: how many times longer a placement takes when B's proxy relays every byte.
      relayedToDirect: Number((relayed.medianMs / direct.medianMs).toFixed(2)),
      // Figures from a shared machine mean little alone: the load beside them says how busy it was.
      loadAverage: loadavg().map((l) => Number(l.toFixed(2))),
    }
    await mkdir(join(REPO, 'bench', 'results'), { recursive: true })
    await writeFile(join(REPO, 'bench', 'results', 'transfer-relayed.json'), `${JSON.stringify(results, null, 2)}\n`)
    process.stdout.write(`${JSON.stringify(results, null, 2)}\n`)
  } finally {
    await fed.close()
    await rm(root, { recursive: true, force: true })
  }
}

main().catch((err) => { process.stderr.write(`${err.stack ?? err}\n`); process.exitCode = 1 })
