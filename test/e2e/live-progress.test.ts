import t from 'tap'
import { randomBytes } from 'node:crypto'
import { open } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { runFedvmOnTerminal } from '../protocol/support/fedvm-terminal'
import { placeRunningGuest, startLiveSites } from '../support/federation/live-libvirt-sites'
import { waitFor } from '../support/wait'
import { stateOf } from './support/live-sites'

const MiB = 1024 * 1024
/** site-a's host caps its live migrations at this (libvirt's migration bandwidth). */
const CAP_MIBS = 8
/** Random data at the start of a 128 MiB disk: at the cap, ≥ 8 s of copying (QEMU 7.2's mirror counts the hole against the cap too: 16 s here). */
const DATA_MIB = 64
const DISK_MIB = 128

// A live migration held to its host's bandwidth cap lasts long enough for the Controller's 500 ms poll
// to see it: `fedvm migrate` under a real pseudo-terminal draws the live line (phase, amount left,
// rate, ETA, memory pass: the Source's libvirt figures, though the Destination answers the progress
// query too), `fedvm site status` at both sites lists it while it runs (at the Destination, the bytes
// through its end of the relay, growing), and Perform takes at least as long as the cap allows for
// the data it had to move.

interface Drawn { percent: number, phase: string, leftMiB: number, rateMiB: number, etaS: number | undefined, pass: number | undefined }

/** Each redraw of the progress line, in order (the terminal output keeps every `\r`). */
function drawnLines (output: string): Drawn[] {
  const re = /\rMigration: \[ *(\d+) %\] (\w+), ([\d.]+) MiB of [\d.]+ MiB left, ([\d.]+) MiB\/s, ETA (\d+ s|\?)(?:, pass (\d+), dirty \d+ pages\/s)?/g
  return [...output.matchAll(re)].map((m) => ({
    percent: Number(m[1]), phase: m[2], leftMiB: Number(m[3]), rateMiB: Number(m[4]),
    etaS: m[5] === '?' ? undefined : Number.parseInt(m[5]), pass: m[6] === undefined ? undefined : Number(m[6]),
  }))
}

t.test('a live migration under a bandwidth cap: the live progress line, site status at both ends, the cap held', async (t) => {
  const started = Date.now()
  const live = await startLiveSites(t, {
    sites: [
      { id: 'site-a', ip: '127.0.0.161', partners: ['site-b'] },
      { id: 'site-b', ip: '127.0.0.162', partners: ['site-a'] },
    ],
    libvirtds: 2,
    hosts: ([x, y]) => ({
      'site-a': [{ id: 'a1', on: x, libvirt: { migrationBandwidthMiBs: CAP_MIBS } }],
      'site-b': [{ id: 'b1', on: y }],
    }),
  })
  const { fed, libvirtds: [x, y] } = live
  const vmId = `liveprog-${live.tag}`
  const uuid = await placeRunningGuest(live, {
    site: 'site-a', host: 'a1', on: x, vmId, memoryMiB: 128,
    disk: async (path) => {
      const fd = await open(path, 'w')
      await fd.write(randomBytes(DATA_MIB * MiB), 0, DATA_MIB * MiB, 0)
      await fd.truncate(DISK_MIB * MiB)
      await fd.close()
    },
  })
  t.comment(`placed and booted at site-a after ${Date.now() - started} ms`)

  const mark = Date.now()
  const migrate = runFedvmOnTerminal(['migrate', '--config', fed.site('site-a').configFile, '--vm', vmId])
  t.teardown(migrate.stop)
  // While it runs: the Controller (site-a) holds the Source's figures, and each site says what it does.
  const atA = await waitFor('site-a to hold figures of the running live migration', async () => {
    const status = (await fed.cli('site-a', 'status')).json
    const m = status?.migrations?.find((x: { vmId: string }) => x.vmId === vmId)
    return m?.progress?.path === 'live' && m.progress.remainingBytes < m.progress.totalBytes ? status : undefined
  }, 60_000, 200, migrate.output)
  const [atB, human] = await Promise.all([
    fed.cli('site-b', 'status').then((s) => s.json),
    (async () => {
      const run = runFedvmOnTerminal(['site', 'status', '--config', fed.site('site-a').configFile])
      t.teardown(run.stop)
      return { code: await run.exited, output: run.output() }
    })(),
  ])
  t.match(atA.migrations.find((m: { vmId: string }) => m.vmId === vmId), { vmId, progress: { path: 'live', phase: /^(disks|memory)$/, totalBytes: Number, remainingBytes: Number, rateBytesPerSecond: Number } }, `site-a, the Controller: ${JSON.stringify(atA.migrations)}`)
  t.match(atA.transfers, [{ vmId, path: 'live' }], 'site-a, the Source: the libvirt job it runs')
  t.comment(`site-b, the Destination, meanwhile: ${JSON.stringify({ migrations: atB?.migrations, transfers: atB?.transfers, inDoubt: atB?.inDoubt })}`)
  t.match(atB, { id: 'site-b', locations: [] }, 'site-b answers while the migration runs, and does not hold the VM yet')
  // site-b, the Destination: its libvirtd has no job for the incoming migration; its status shows what came through its end of the relay.
  type Arrival = { vmId: string, phase: string, receivedBytes: { memory: number, disks: number }, rateBytesPerSecond: number }
  const arrivalAtB = async (): Promise<{ arrival: Arrival, json: string } | undefined> => {
    const status = (await fed.cli('site-b', 'status')).json
    const arrival = status?.arrivals?.find((a: Arrival) => a.vmId === vmId)
    return arrival === undefined ? undefined : { arrival, json: JSON.stringify(status.arrivals) }
  }
  const received = (a: Arrival): number => a.receivedBytes.memory + a.receivedBytes.disks
  const first = await waitFor('site-b to list the arrival with bytes received', async () => {
    const at = await arrivalAtB()
    return at !== undefined && received(at.arrival) > 0 ? at : undefined
  }, 30_000, 200, migrate.output)
  const later = await waitFor('site-b\'s byte count to grow', async () => {
    const at = await arrivalAtB()
    return at !== undefined && received(at.arrival) > received(first.arrival) ? at : undefined
  }, 30_000, 200, migrate.output)
  t.comment(`site-b's arrival: ${first.json} then ${later.json}`)
  t.equal(first.arrival.phase, 'receiving', 'site-b, the Destination: the arrival, receiving')
  t.match(later.arrival, { phase: /^(receiving|finishing|verifying)$/, rateBytesPerSecond: Number }, 'then receiving still, or Finishing (a slow status may come late)')
  t.ok(later.arrival.receivedBytes.disks >= first.arrival.receivedBytes.disks && later.arrival.receivedBytes.memory >= first.arrival.receivedBytes.memory, 'its byte counts per channel only grow')
  t.notOk(/127\.0\.0\.161|site-a|"a1"/.test(later.json), 'nothing in it names the Source\'s site, host or address')
  t.equal(human.code, 0, human.output)
  t.match(human.output, new RegExp(`migrating \\(this site is the Controller\\):\\r\\n {2}${vmId}: Migration: \\[ *\\d+ %\\] (disks|memory), [\\d.]+ MiB of [\\d.]+ MiB left, [\\d.]+ MiB/s, ETA (\\d+ s|\\?), pass \\d+, dirty \\d+ pages/s\\r\\ndata moving here:\\r\\n {2}${vmId}: Migration: .*\\(live\\)\\r\\n`), 'site status on a terminal: the Controller\'s line and the Source\'s')

  t.equal(await migrate.exited, 0, migrate.output())
  const wallMs = Date.now() - mark
  const output = migrate.output()
  const lines = drawnLines(output)
  t.comment(`${lines.length} redraws in ${wallMs} ms: ${lines.map((l) => `${l.phase} ${l.leftMiB} MiB/${l.rateMiB} MiB/s/ETA ${String(l.etaS)}/pass ${String(l.pass)}`).join(' | ')}`)
  t.ok(lines.length >= 6, 'the line was redrawn while it ran')
  t.ok(lines.every((l) => l.pass !== undefined), 'every live line shows the memory pass and the dirty rate')
  const disks = lines.filter((l) => l.phase === 'disks')
  const memory = lines.filter((l) => l.phase === 'memory')
  t.ok(disks.length >= 3, `the disks' copy was seen (${disks.length} redraws)`)
  t.ok(memory.some((l) => (l.pass ?? 0) >= 1), 'then the memory\'s, with its pass number')
  for (const [phase, seen] of [['disks', disks], ['memory', memory]] as const) {
    t.ok(seen[seen.length - 1].leftMiB < seen[0].leftMiB, `${phase}: what is left goes down (${seen[0].leftMiB} → ${seen[seen.length - 1].leftMiB} MiB)`)
    const etas = seen.filter((l) => l.etaS !== undefined).map((l) => l.etaS!)
    t.ok(etas.length >= 2 && etas[etas.length - 1] < etas[0], `${phase}: and so does the ETA (${etas.join(' ')} s)`)
    t.ok(seen.some((l) => l.rateMiB > 0), `${phase}: a rate is shown`)
  }
  // The memory's rate is QEMU's; the disks' is the copy's average (copy-rate.ts: libvirt gives none), rough while the mirror's first bursts weigh.
  t.ok(memory.every((l) => l.rateMiB <= CAP_MIBS * 1.25), `memory: no rate above the cap (${CAP_MIBS} MiB/s, 25% margin)`)
  const copyRate = disks[disks.length - 1].rateMiB
  t.ok(copyRate >= CAP_MIBS * 0.5 && copyRate <= CAP_MIBS * 1.25, `disks: the copy's average at its end, ${copyRate} MiB/s, is near the cap`)
  // The memory is counted in from the start, so the change from disks to memory keeps the percentage; a point of slack
  // for the mirror, which goes on sending the guest's writes while the memory moves.
  t.ok(lines.every((l, i) => i === 0 || l.percent >= lines[i - 1].percent - 1), `the percentage never goes back (${lines.map((l) => `${l.phase} ${l.percent}`).join(', ')})`)
  t.match(output, /\rMigration: \[100 %\] done, 0\.0 MiB of [\d.]+ MiB left[^\r\n]*\r\n\{/, 'a last "done" line, then the outcome')
  const outcome = JSON.parse(output.slice(output.indexOf('{')).replaceAll('\r\n', '\n'))
  t.match(outcome, { vm: vmId, outcome: 'migrated', destination: 'site-b', path: 'live' })

  // The cap: the disks' data alone takes DATA_MIB / CAP_MIBS seconds (the memory comes on top).
  const performed = fed.daemon('site-a').events().find((e) => e.event === 'live-performed' && e.vm === vmId)
  const floorMs = DATA_MIB / CAP_MIBS * 1000
  t.ok(typeof performed?.ms === 'number' && performed.ms >= floorMs * 0.9, `Perform took ${String(performed?.ms)} ms, at least the ${floorMs} ms that ${DATA_MIB} MiB at ${CAP_MIBS} MiB/s take (10% margin)`)
  t.equal(await stateOf(y, vmId), 'running', 'running at site-b')
  t.equal((await y.virsh('domuuid', vmId)).trim(), uuid, 'the same domain')
  t.same((await fed.cli('site-a', 'status')).json.migrations, [], 'once over, site-a lists no running migration')
  t.comment(`fedvm migrate ${wallMs} ms, Perform ${String(performed?.ms)} ms, downtime ${String(outcome.downtimeMs)} ms; load ${loadavg().map((l) => l.toFixed(2)).join(' ')}; whole test ${Date.now() - started} ms`)
})
