import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { placeRunningGuest, startLiveSites } from '../support/federation/live-libvirt-sites'
import { waitUntil } from '../host/libvirt/support/live-pair'
import { BOOT_MARKER, guestWritesOn, stateOf } from './support/live-sites'

// A live migration between two libvirt-backed sites, broken four times: site-a's daemon (Controller
// and Source) SIGKILLed while Perform runs; site-b's libvirtd SIGKILLed while the streams flow; site-a
// SIGKILLed after site-b's Finish but before the decision; site-a SIGKILLed once Perform answered,
// before it asked site-b to Finish (site-b Finished on the Source's in-band signal). Each time the VM
// runs at exactly one site afterwards, at the Source (no commit was recorded), once the killed part
// is back and the in-doubt resolution ran; the guest never rebooted. Last, a migration that cannot
// complete within its completion timeout is aborted and the VM keeps running at the Source.

t.test('a live migration broken at either end leaves the VM running at the Source only', async (t) => {
  const started = Date.now()
  // Armed by writing a point's name into this file (protocol/roles/fault-point.ts); read at each step.
  const live = await startLiveSites(t, {
    sites: [
      { id: 'site-a', ip: '127.0.0.94', partners: ['site-b'] },
      { id: 'site-b', ip: '127.0.0.95', partners: ['site-a'] },
    ],
    libvirtds: 2,
    // site-a's host caps its migrations at 32 MiB/s, so the disk's copy alone lasts ~3 s: a fault armed at the first
    // progress report lands mid-stream, not after the Destination's in-band Finish (~20 ms after Perform ends).
    hosts: ([x, y]) => ({ 'site-a': [{ id: 'a1', on: x, libvirt: { migrationBandwidthMiBs: 32 } }], 'site-b': [{ id: 'b1', on: y }] }),
    beforeStart: async (fed) => {
      await writeFile(join(fed.root, 'faults'), '')
      process.env.FEDVM_FAULT_POINT_FILE = join(fed.root, 'faults')
      t.teardown(() => { delete process.env.FEDVM_FAULT_POINT_FILE })
    },
  })
  const { fed, libvirtds: [x, y] } = live
  const faults = join(fed.root, 'faults')

  // 256 MiB of RAM and 96 MiB of disk data at the cap: Perform lasts long enough to be broken midway.
  const vmId = `livefault-${live.tag}`
  const uuid = await placeRunningGuest(live, { site: 'site-a', host: 'a1', on: x, vmId, memoryMiB: 256, disk: async (path) => await writeFile(path, randomBytes(96 * 1024 * 1024)) })
  const consoleA = join(fed.vmDir('site-a', 'a1'), vmId, 'console.log')

  /** The invariant after each fault: running at site-a (same domain, never rebooted), nothing at site-b. */
  const atSourceOnly = async (t: Test): Promise<void> => {
    t.ok(await waitUntil(async () => await stateOf(x, vmId) === 'running', 120_000), 'the VM runs at site-a', { siteA: fed.site('site-a').daemon?.stderr.slice(-3000) })
    t.equal((await x.virsh('domuuid', vmId)).trim(), uuid, 'the same domain')
    t.ok(await waitUntil(async () => !(await y.virsh('list', '--all', '--name')).includes(vmId), 60_000), 'site-b\'s libvirtd has no domain of it', { siteB: fed.site('site-b').daemon?.stderr.slice(-3000) })
    t.ok(await guestWritesOn(x, vmId), 'the guest goes on writing its disk at site-a')
    t.equal((await readFile(consoleA, 'utf8')).split(BOOT_MARKER).length - 1, 1, 'the guest booted once, never again')
    const locations = (await fed.cli('site-a', 'status')).json?.locations as Array<Record<string, unknown>>
    t.match(locations, [{ vmId, kind: 'host', target: 'a1' }], 'site-a still records the VM on its host')
    t.notOk(((await fed.cli('site-b', 'status')).json?.locations as unknown[]).length > 0, 'site-b records nothing of it')
    const leftovers = async (): Promise<string[]> => [
      ...await readdir(fed.vmDir('site-b', 'b1')).catch(() => []),
      ...await readdir(join(fed.vmDir('site-b', 'b1'), '.arriving')).catch(() => []),
    ].filter((n) => !n.startsWith('.'))
    t.ok(await waitUntil(async () => (await leftovers()).length === 0, 60_000), 'site-b keeps no folder of it', { left: await leftovers() })
  }

  await t.test('site-a\'s daemon (Controller and Source) SIGKILLed mid-Perform', async (t) => {
    await writeFile(faults, 'source:performing')
    const daemon = fed.daemon('site-a')
    const migrate = fed.cli('site-a', 'migrate', '--vm', vmId)
    t.ok(await waitUntil(async () => !daemon.alive, 120_000), 'site-a\'s daemon killed itself while Perform ran')
    await writeFile(faults, '')
    t.not((await migrate).code, 0, 'fedvm migrate failed')
    t.ok(daemon.events().some((e) => e.event === 'live-progress' || e.event === 'stream-joined'), 'the streams had started')
    const mark = Date.now()
    await fed.start('site-a')
    await atSourceOnly(t)
    t.comment(`resolved ${Date.now() - mark} ms after site-a restarted`)
  })

  await t.test('site-b\'s libvirtd SIGKILLed mid-stream', async (t) => {
    const daemon = fed.daemon('site-a')
    const before = daemon.events().length
    const migrate = fed.cli('site-a', 'migrate', '--vm', vmId)
    const progressed = await waitUntil(async () => daemon.events().slice(before).some((e) => e.event === 'live-progress'), 120_000)
    t.ok(progressed, 'Perform reported progress')
    process.kill(Number(readFileSync(join(y.dir, 'run', 'libvirtd.pid'), 'utf8').trim()), 'SIGKILL')
    const moved = await migrate
    t.not(moved.code, 0, 'fedvm migrate failed', { output: moved.raw.stdout })
    t.equal(await stateOf(x, vmId), 'running', 'the VM runs at site-a at once (Finish failed: nothing runs at site-b)')
    const failed = daemon.events().slice(before).find((e) => e.event === 'live-transfer-failed')
    t.comment(`the live transfer failed at ${String(failed?.step)} (${String(failed?.code)})`)
    await y.restartLibvirtd()
    await atSourceOnly(t)
  })
  await t.test('site-a SIGKILLed after site-b\'s Finish, before the decision: site-b destroys its copy', async (t) => {
    // Finish made the VM run at site-b; the restarted Controller decides abort, which site-b must act on first.
    await writeFile(faults, 'controller:verified')
    const daemon = fed.daemon('site-a')
    const migrate = fed.cli('site-a', 'migrate', '--vm', vmId)
    t.ok(await waitUntil(async () => !daemon.alive, 120_000), 'site-a\'s daemon killed itself once dstat = sstat')
    await writeFile(faults, '')
    t.not((await migrate).code, 0, 'fedvm migrate failed')
    t.ok(fed.daemon('site-b').events().some((e) => e.event === 'live-finished' && e.vm === vmId), 'site-b had finished (the VM ran there)')
    t.not(await stateOf(x, vmId), 'running', 'meanwhile site-a\'s copy is not running (paused by Perform)')
    await fed.start('site-a')
    await atSourceOnly(t)
    t.ok(fed.daemon('site-b').events().some((e) => e.event === 'transfer-aborted' && e.vm === vmId), 'site-b acted on the abort')
  })
  await t.test('site-a SIGKILLed once Perform answered, before it asked for Finish: site-b runs the VM already (in-band Finish), then destroys it on the abort', async (t) => {
    // The Source says "Perform done" in-band before its answer reaches the Controller, which dies then:
    // no live-finish is ever sent, yet the guest resumes at site-b. The restarted Controller decides abort.
    await writeFile(faults, 'controller:received')
    const daemon = fed.daemon('site-a')
    const beforeB = fed.daemon('site-b').events().length
    const migrate = fed.cli('site-a', 'migrate', '--vm', vmId)
    t.ok(await waitUntil(async () => !daemon.alive, 120_000), 'site-a\'s daemon killed itself once Perform answered')
    await writeFile(faults, '')
    t.not((await migrate).code, 0, 'fedvm migrate failed')
    t.ok(daemon.events().some((e) => e.event === 'live-performed' && e.signalled === true), 'the Source signalled "Perform done" in-band')
    t.notOk(daemon.events().some((e) => e.event === 'send' && e.op === 'live-finish'), 'the Controller never sent live-finish')
    t.ok(await waitUntil(async () => await stateOf(y, vmId) === 'running', 30_000), 'the VM runs at site-b', { siteB: fed.daemon('site-b').stderr.slice(-3000) })
    t.ok(fed.daemon('site-b').events().slice(beforeB).some((e) => e.event === 'live-finished' && e.vm === vmId && e.by === 'source'), 'site-b Finished on the Source\'s signal')
    t.not(await stateOf(x, vmId), 'running', 'meanwhile site-a\'s copy is not running (paused by Perform)')
    await fed.start('site-a')
    await atSourceOnly(t)
    t.ok(fed.daemon('site-b').events().slice(beforeB).some((e) => e.event === 'transfer-aborted' && e.vm === vmId), 'site-b acted on the abort')
  })
  await t.test('a migration that does not complete within completionTimeoutMs is aborted: the VM keeps running at site-a', async (t) => {
    await fed.stop('site-a')
    await fed.reconfigure('site-a', (c) => { c.hosts[0].libvirt.completionTimeoutMs = 300 })
    await fed.start('site-a')
    const moved = await fed.cli('site-a', 'migrate', '--vm', vmId)
    t.not(moved.code, 0, 'fedvm migrate failed', { output: moved.raw.stdout })
    t.ok(fed.daemon('site-a').events().some((e) => e.event === 'live-perform-failed' && /did not complete within 300 ms/.test(String(e.error))), 'Perform was aborted at the timeout')
    await atSourceOnly(t)
  })
  t.comment(`whole test ${Date.now() - started} ms`)
})
