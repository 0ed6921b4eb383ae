import t from 'tap'
import { randomBytes } from 'node:crypto'
import { hostname, loadavg } from 'node:os'
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { type LiveProgress, progressLine } from '../../../host/libvirt/live-progress'
import { DEFAULT_MAX_DOWNTIME_MS } from '../../../host/libvirt/live-source'
import { liveStatusesAgree, performCompleted } from '../../../host/libvirt/live-status'
import { ProtocolError } from '../../../protocol/errors'
import { StreamPark, StreamParker } from '../../../protocol/proxy/stream-relay'
import { liveTestLimits } from '../../support/vm/tcg-live-downtime'
import { BOOT_MARKER, bootedGuestOnPair, identities, liveMigration, sourceProxy, waitFor } from './support/live-pair'

// Live migration as libvirt's five phases, each on its own side's libvirtd (never one libvirtd
// talking to the other), the cookies neutralised between them, and QEMU's migration and NBD
// streams joined through the stream relay's token-bound TLS channel on loopback.

t.test('the stream channel refuses a token for another VM and another certificate', async (t) => {
  const ids = await identities()
  t.teardown(async () => await rm(ids.dir, { recursive: true, force: true }))
  const token = randomBytes(16).toString('hex')
  const refusals: string[] = []
  const park = new StreamPark((presented, _channel, fingerprint) => {
    if (presented !== token) throw new ProtocolError('token-unknown', 'not our token')
    if (fingerprint !== ids.destination.fingerprint) throw new ProtocolError('token-foreign', 'bound to another destination')
    return presented
  }, (e) => { if (e.event === 'stream-refused') refusals.push(String(e.code)) })
  const proxy = await sourceProxy(ids.source, park)
  t.teardown(() => { park.close(); proxy.server.close() })
  const base = { url: proxy.url, fingerprint: ids.source.fingerprint, channel: 'migration', targetPath: join(ids.dir, 'none.sock') }
  const foreignToken = new StreamParker({ ...base, token: randomBytes(16).toString('hex'), clientCert: ids.destination })
  const foreignCert = new StreamParker({ ...base, token, clientCert: ids.stranger })
  t.teardown(() => { foreignToken.close(); foreignCert.close() })
  await waitFor(() => foreignToken.failed !== undefined && foreignCert.failed !== undefined, 20_000)
  t.match(foreignToken.failed?.message, /403 token-unknown/, 'a token the Source did not hand out is refused')
  t.match(foreignCert.failed?.message, /403 token-foreign/, 'the right token from another certificate is refused')
  t.same(refusals.sort(), ['token-foreign', 'token-unknown'])
  t.equal(foreignToken.joined + foreignCert.joined, 0, 'nothing was joined')
})

t.test('a running VM moves live between two libvirtds through the stream relay', async (t) => {
  const { a, b, ids, name, domain, type } = await bootedGuestOnPair(t, 'live', { memoryMiB: 128, diskMiB: 16 })

  // The host asks for the downtime ramp; a TCG domain (this machine has no KVM) must not get it.
  const hostLog: string[] = []
  const limits = liveTestLimits(type)
  const maxDowntimeMs = limits.maxDowntimeMs ?? DEFAULT_MAX_DOWNTIME_MS
  const { source, destination, parkers, crossing } = await liveMigration(t, a, b, ids, name, { downtimeRamp: true, log: (line) => hostLog.push(line), ...limits })
  t.same(source.offer.disks, [{ name: `${name}.img`, format: 'raw', bytes: 16 * 1024 * 1024 }], 'the disk travels as a name, a format and a size')
  const started = Date.now()
  const progress: LiveProgress[] = []
  // QEMU's downtime limit as the Source's libvirtd reports it at each progress sample, i.e. while the job runs.
  const read: Array<Promise<number | undefined>> = []
  const performed = await source.perform(destination.cookie, {
    onProgress: (p) => {
      progress.push(p)
      read.push(a.virsh('migrate-getmaxdowntime', name).then((out) => Number(out.trim()), () => undefined))
    },
    progressEveryMs: 200,
  })
  crossing.push(performed)
  const seen = (await Promise.all(read)).filter((ms) => ms !== undefined)
  if (type === 'kvm') {
    t.ok(seen.includes(5), `a KVM domain ramps: the limit starts at 5 ms (read ${seen.join(', ')} ms)`)
  } else {
    t.ok(seen.length > 0 && seen.every((ms) => ms === maxDowntimeMs), `a TCG domain does not ramp: QEMU has the maximum, ${maxDowntimeMs} ms, all through Perform (read ${seen.join(', ')} ms)`)
    t.match(hostLog, [/downtimeRamp is set, but .* runs under TCG, not KVM: no ramp/], 'and the host log says why')
    t.notOk(hostLog.some((line) => line.includes('runs under TCG with maxDowntimeMs')), `at ${maxDowntimeMs} ms no warning about memory passes`)
  }
  const finished = await destination.finish(performed, false)
  if (finished === undefined) throw new Error('Finish returned no domain')
  crossing.push(finished.cookie)
  const sstat = source.status(performed)
  const dstat = await destination.status()
  t.same(dstat, sstat, 'dstat = sstat: the same UUID, disk names and sizes, and a completed job at both ends')
  t.ok(liveStatusesAgree(dstat, sstat))
  await source.confirm(finished.cookie, false)
  const elapsed = Date.now() - started

  t.equal(finished.uuid, domain.uuid, 'the same domain (UUID) runs at the Destination')
  t.match(await b.virsh('domstate', name), /running/)
  t.notOk((await a.virsh('list', '--all', '--name')).includes(name), 'the Source no longer has it')
  t.ok(parkers.reduce((n, p) => n + p.joined, 0) >= 2, 'both the migration and the NBD stream went through the relay')
  const downtime = /<downtime>(\d+)<\/downtime>/.exec(performed.toString())?.[1]
  t.comment(`live migration: ${elapsed} ms Perform..Confirm, downtime ${String(downtime)} ms (libvirt's, from Perform's cookie); progress samples: ${progress.length}${progress.length > 0 ? `, last: ${progressLine(progress[progress.length - 1])}` : ''}; load ${loadavg()[0].toFixed(1)}`)
  for (const cookie of crossing) {
    t.notOk(cookie.toString().includes(`<hostname>${hostname()}<`), 'no cookie that crossed names this machine')
  }
  // The guest kept running: its console at the Destination never shows a new boot.
  await new Promise((resolve) => setTimeout(resolve, 2000))
  t.notOk((await readFile(join(b.dir, 'vms', name, `${name}.console.log`), 'utf8').catch(() => '')).includes(BOOT_MARKER), 'no reboot at the Destination')
  t.match(await b.virsh('domstate', name), /running/, 'still running two seconds later')
})


// The ramp runs only for KVM domains; here the test stands in for a KVM host (`rampAllowed`) on a TCG
// one, so it checks only what the ramp does to QEMU's limit while the job runs and that the migration
// completes, not how the guest fares after arriving (extra passes corrupt TCG guests).
t.test('with the host\'s downtimeRamp on a KVM domain, Perform starts at 1/64 of the maximum and the limit only rises', async (t) => {
  const { a, b, ids, name, type } = await bootedGuestOnPair(t, 'ramp', { memoryMiB: 128, diskMiB: 16 })
  const hostLog: string[] = []
  const { source, destination } = await liveMigration(t, a, b, ids, name, { downtimeRamp: true, rampAllowed: () => true, log: (line) => hostLog.push(line) })
  if (type === 'qemu') t.match(hostLog, [new RegExp(`${name} runs under TCG with maxDowntimeMs 300: .* 2000 ms lets it switch over after its first pass`)], 'the host warns that 300 ms may make a TCG guest do more memory passes')
  const limits: Array<Promise<number | undefined>> = []
  const performed = await source.perform(destination.cookie, {
    onProgress: () => { limits.push(a.virsh('migrate-getmaxdowntime', name).then((out) => Number(out.trim()), () => undefined)) },
    progressEveryMs: 50,
  })
  const seen = (await Promise.all(limits)).filter((ms): ms is number => ms !== undefined)
  const ramp = seen.slice(seen.indexOf(5))
  t.ok(seen.includes(5), `the running job reports a 5 ms limit (300 / 64, rounded up; read ${seen.join(', ')} ms)`)
  t.ok(ramp.every((ms, i) => i === 0 || ms >= ramp[i - 1]) && ramp.every((ms) => ms <= 300), 'from there it only rises, up to the maximum at most')
  t.ok(performCompleted(performed), 'Perform completed')
  const finished = await destination.finish(performed, false)
  await source.confirm(finished?.cookie ?? Buffer.alloc(0), finished === undefined)
})
