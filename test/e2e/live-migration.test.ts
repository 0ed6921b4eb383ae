import t from 'tap'
import { hostname, loadavg } from 'node:os'
import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { Federation } from '../protocol/support/federation'
import { placeRunningGuest, startLiveSites } from '../support/federation/live-libvirt-sites'
import { BOOT_MARKER, backingFreeDisk, guestWritesOn, stateOf } from './support/live-sites'

// A running VM moves live between two sites whose hosts are libvirt connections, through an
// Intermediary: real `fedvm site run` processes on loopback, each site driving only its own libvirtd
// (each in its own namespaces), the migration cookies carried in the signed protocol, QEMU's
// migration and NBD streams through the transfer proxies' token-bound TLS channel.

t.test('a running VM migrates live from site-a to site-b through site-i', async (t) => {
  const started = Date.now()
  // Host ids no other site may ever see (they name folders too).
  const hostIds = (tag: string): { hostA: string, hostB: string, hostB2: string } => ({ hostA: `a-hv-${tag}`, hostB: `b-hv-${tag}`, hostB2: `b2-hv-${tag}` })
  const live = await startLiveSites(t, {
    sites: [
      { id: 'site-a', ip: '127.0.0.91', partners: ['site-i'] },
      { id: 'site-i', ip: '127.0.0.92', partners: ['site-a', 'site-b'] },
      { id: 'site-b', ip: '127.0.0.93', partners: ['site-i'] },
    ],
    libvirtds: 2,
    // site-b's second host shares site-a's libvirtd: hosts on one libvirtd share its domain names, so it is not offered while site-a runs the VM.
    hosts: ([x, y], tag) => {
      const { hostA, hostB, hostB2 } = hostIds(tag)
      return { 'site-a': [{ id: hostA, on: x }], 'site-b': [{ id: hostB, on: y }, { id: hostB2, on: x }] }
    },
  })
  const { fed, libvirtds: [x, y], tag } = live
  const { hostA, hostB, hostB2 } = hostIds(tag)

  const vmId = `live-${tag}`
  const uuid = await placeRunningGuest(live, { site: 'site-a', host: hostA, on: x, vmId, memoryMiB: 128, disk: async (path) => await backingFreeDisk(path, 64) })
  const aDir = join(fed.vmDir('site-a', hostA), vmId)
  t.comment(`placed and booted at site-a after ${Date.now() - started} ms`)

  const mark = Date.now()
  const moved = await fed.cli('site-a', 'migrate', '--vm', vmId)
  const wallMs = Date.now() - mark
  t.equal(moved.code, 0, 'fedvm migrate succeeds', { output: moved.raw.stdout + moved.raw.stderr, siteA: fed.daemon('site-a').stderr.slice(-3000), siteB: fed.daemon('site-b').stderr.slice(-3000) })
  t.match(moved.json, { outcome: 'migrated', destination: 'site-i', local: false, path: 'live' }, 'migrated live, the Controller seeing only its partner site-i')
  const bDir = join(fed.vmDir('site-b', hostB), vmId)
  t.equal(await stateOf(y, vmId), 'running', 'running at site-b\'s libvirtd')
  t.equal((await y.virsh('domuuid', vmId)).trim(), uuid, 'the same domain (UUID)')
  t.equal((await x.virsh('list', '--all', '--name')).trim(), '', 'site-a\'s libvirtd keeps no domain')
  t.same((await readdir(fed.vmDir('site-a', hostA))).filter((n) => !n.startsWith('.')), [], 'site-a\'s host keeps no VM folder')
  t.ok(await guestWritesOn(y, vmId), 'the guest goes on writing its disk at site-b')
  const console = await readFile(join(bDir, 'console.log'), 'utf8').catch(() => '')
  t.notOk(console.includes(BOOT_MARKER), 'no boot at site-b: the guest kept running (its console there shows no new boot)')
  t.same(JSON.parse(await readFile(join(bDir, 'descriptor.json'), 'utf8')), { id: vmId, resources: { memoryMiB: 128, vcpus: 1 } }, 'the descriptor is beside the VM at site-b')
  const afterMove = (await status(fed, 'site-b')).locations
  const performed = fed.daemon('site-a').events().find((e) => e.event === 'live-performed' && e.vm === vmId)
  t.comment(`live A → I → B: fedvm migrate ${wallMs} ms (Controller ${String(moved.json?.durationMs)} ms, Perform ${String(performed?.ms)} ms), ` +
    `downtime ${String(moved.json?.downtimeMs)} ms (libvirt's, QEMU's measure on the host clock); load ${loadavg()[0].toFixed(2)}`)

  // Scenario 3: the same path between two libvirt hosts of one site (its proxy relays to itself).
  const b2Dir = join(fed.vmDir('site-b', hostB2), vmId)
  const within = await fed.cli('site-b', 'migrate', '--vm', vmId, '--to', hostB2)
  t.equal(within.code, 0, 'fedvm migrate --to the other host succeeds', { output: within.raw.stdout + within.raw.stderr, siteB: fed.daemon('site-b').stderr.slice(-3000) })
  t.match(within.json, { outcome: 'migrated', destination: 'site-b', local: true, path: 'live' }, 'moved live within site-b')
  t.equal(await stateOf(x, vmId), 'running', 'running on the other host\'s libvirtd')
  t.equal((await x.virsh('domuuid', vmId)).trim(), uuid, 'the same domain (UUID)')
  t.equal((await y.virsh('list', '--all', '--name')).trim(), '', 'the host it left keeps no domain')
  t.notOk((await readFile(join(b2Dir, 'console.log'), 'utf8').catch(() => '')).includes(BOOT_MARKER), 'no boot there either')
  t.match((await status(fed, 'site-b')).locations, [{ vmId, kind: 'host', target: hostB2, upstream: 'site-i' }], 'site-b records the other host, upstream kept')
  t.comment(`live ${hostB} → ${hostB2} within site-b: downtime ${String(within.json?.downtimeMs)} ms, Controller ${String(within.json?.durationMs)} ms`)

  // Location unawareness: no site's state or log names another site's host, folder or machine.
  const machine = `<hostname>${hostname()}</hostname>`
  const foreign: Record<string, string[]> = { 'site-a': [hostB, hostB2, bDir, b2Dir], 'site-i': [hostA, hostB, hostB2, aDir, bDir, b2Dir], 'site-b': [hostA, aDir] }
  for (const [site, needles] of Object.entries(foreign)) {
    const texts = [fed.daemon(site).stderr, ...await stateFiles(join(fed.site(site).dir, 'state'))]
    for (const needle of [...needles, machine]) t.notOk(texts.some((text) => text.includes(needle)), `${site}'s state and log never name ${needle}`)
  }
  t.match((await status(fed, 'site-a')).locations, [{ vmId, kind: 'partner', target: 'site-i' }], 'site-a records only its partner')
  t.match(afterMove, [{ vmId, kind: 'host', target: hostB, upstream: 'site-i' }], 'site-b recorded its own host')
  t.comment(`whole test ${Date.now() - started} ms`)
})

async function stateFiles (dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [])
  return await Promise.all(names.map(async (name) => (await readFile(join(dir, name))).toString('latin1')))
}

async function status (fed: Federation, site: string): Promise<{ locations: Array<Record<string, unknown>> }> {
  const answer = await fed.cli(site, 'status')
  return answer.json
}
