import t from 'tap'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import Database from 'better-sqlite3'
import { ensureDeb, ensureVmImage } from '../packaging/support/artifacts'
import { DeliveryReceiver } from '../support/federation/delivery-receiver'
import { makeIntake, rowOf } from '../support/federation/kpi-vm'
import { runFedvmIn } from '../support/federation/netns-fedvm'
import { SiteNetwork } from '../support/federation/site-network'
import { PROXY_PORT, VmSite } from '../support/federation/vm-site'
import { waitFor } from '../support/wait'
import { getDomainTime } from '../../host/libvirt/rpc/domain-time'
import { RpcConnection } from '../../host/libvirt/rpc/rpc-connection'

// A VM of packaging/vm-image (guestfs + a sample app writing a KPI row every second)
// moves between two sites, each in its own network namespace with its own libvirtd, `fedvm site
// run` and `fedvm agent run`. One boot serves every check: the Destination refusing at define time
// (the VM stays at A, running), a migration A → B (timings, UUID, KPI stream, nothing left at A),
// back to A with B's site daemon SIGKILLed midway (the retry completes), the KPI stream at the
// primary without gap or duplicate over all moves, and A never learning B's host names.

const run = promisify(execFile)
// The first run on a machine builds the .deb and the image (debootstrap: 3-6 min); later ~2-3 min.
t.setTimeout(15 * 60_000)
const log = (line: string): void => { t.comment(line) }
const RECEIVER_PORT = 7480
/** B's host name: A must never see it. */
const B_HOST = 'b-hv-7q3'

t.test('a KPI-writing VM migrates between two sites in their own network namespaces', async (t) => {
  const started = Date.now()
  const elapsed = (): string => `${((Date.now() - started) / 1000).toFixed(1)} s`
  const image = await ensureVmImage(await ensureDeb(log), log)
  log(`image ready after ${elapsed()}`)

  // Everything torn down in one place, last set up first, also on failure.
  const cleanups: Array<() => Promise<unknown>> = []
  t.teardown(async () => {
    for (const clean of cleanups.reverse()) await clean().catch((err) => log(`cleanup: ${String(err)}`))
  })
  const tag = randomBytes(3).toString('hex')
  const root = await mkdtemp(join(tmpdir(), 'fvm-mig-'))
  cleanups.push(async () => await rm(root, { recursive: true, force: true }))
  // FEDVM_TEST_KEEP_LOGS=DIR keeps the sites' and agents' logs (copied there before the clean-up).
  const keep = process.env.FEDVM_TEST_KEEP_LOGS
  if (keep) cleanups.push(async () => await run('sh', ['-c', 'mkdir -p "$1" && for s in a b; do for f in site agent; do cp "$2/$s/$f.log" "$1/$s-$f.log" 2>/dev/null || true; done; cp "$2/$s/hosts"/*/*/console.log "$1/$s-console.log" 2>/dev/null || true; done', 'sh', keep, root]))
  const { network, sites: [netA, netB] } = await SiteNetwork.create(tag, ['a', 'b'])
  cleanups.push(async () => await network.destroy())
  const created = await Promise.allSettled([
    VmSite.create({ id: 'site-a', hostId: 'a-hv1', net: netA, dir: join(root, 'a'), tag: `${tag}a` }),
    VmSite.create({ id: 'site-b', hostId: B_HOST, net: netB, dir: join(root, 'b'), tag: `${tag}b` }),
  ])
  for (const c of created) if (c.status === 'fulfilled') cleanups.push(async () => await c.value.stop())
  for (const c of created) if (c.status === 'rejected') throw c.reason
  const [a, b] = created.map((c) => (c as PromiseFulfilledResult<VmSite>).value)
  log(`namespaces and libvirtds up after ${elapsed()}`)

  // Deliveries go to a receiver at the primary site (A), each agent on its own path.
  const receiver = await DeliveryReceiver.start(netA.name, netA.address, RECEIVER_PORT, root)
  cleanups.push(async () => await receiver.stop())
  // This test is about the cold path (virsh save, files through the proxies): its hosts leave by save, not live.
  const coldHost = (site: VmSite): Record<string, unknown> => ({ id: site.hostId, vmDir: site.vmDir, maxVms: 2, libvirt: { uri: site.libvirt.uri, leaveBy: 'save' } })
  await a.writeConfig([b], { hosts: [coldHost(a)] })
  // B's source proxy is capped: when the VM leaves B, the copy lasts long enough to be killed midway.
  await b.writeConfig([a], { hosts: [coldHost(b)], proxies: [{ listen: `${netB.address}:${PROXY_PORT}`, maxBytesPerSecond: 48 * 2 ** 20 }] })
  await Promise.all([a.startDaemon(), b.startDaemon()])

  const vmId = `kpi-${tag}`
  /** Everything A's command line printed (the Controller's outcomes): checked for B's host names at the end. */
  const printedAtA: string[] = []
  const cliA = async (sub: string, ...args: string[]): ReturnType<VmSite['cli']> => {
    const answer = await a.cli(sub, ...args)
    printedAtA.push(answer.stdout, answer.stderr)
    return answer
  }
  const descriptor = {
    id: vmId,
    primarySite: { id: 'site-a', publicKey: a.keys.sealPublicKey },
    monitoring: [{ metric: 'kpi:users.sample', monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' }],
  }
  const intake = await makeIntake(image, join(root, 'intake'), vmId, descriptor)
  // Each agent posts to its site's ingest (the relay takes B's deliveries to A, the primary) and,
  // as a witness of what each agent sent, to the test's receiver.
  for (const site of [a, b]) await site.startAgent([{ type: 'http', name: 'witness', url: `${receiver.url}/${site.id}` }])
  const context = async (): Promise<string> => [
    `console: ${(await readFile(join(a.vmDir, vmId, 'console.log'), 'utf8').catch(() => '')).slice(-3000)}`,
    `A agent /metrics: ${(await agentMetrics(netA.name).then((r) => r.stdout, () => '')).split('\n').filter((l) => /^fedvm_(feed|delivery|kpi)/.test(l)).join(' | ')}`,
    `A site: ${a.daemon?.stderr.slice(-1500) ?? ''}`, `B site: ${b.daemon?.stderr.slice(-1500) ?? ''}`,
    `A agent: ${a.agent?.stderr.slice(-800) ?? ''}`, `B agent: ${b.agent?.stderr.slice(-800) ?? ''}`,
  ].join('\n')

  // Primary placement at A: the intake folder becomes a VM on A's libvirt host, booted there.
  const placed = await cliA('place', '--vm', vmId, '--dir', intake.dir, '--descriptor', intake.descriptorFile)
  t.match(placed.json, { outcome: 'migrated', destination: 'site-a', local: true }, `placed at site-a (${placed.stdout.trim() || placed.stderr})`)
  t.equal(await state(a, vmId), 'running', 'running at A')
  const uuid = (await a.libvirt.virsh('domuuid', vmId)).trim()
  const rows = (): Array<{ seq: number, epoch: string, value: number, path: string }> => receiver.received
    .filter((r) => r.delivery.vm === vmId)
    .map((r) => ({ ...rowOf(r.delivery.id)!, value: r.delivery.samples?.[0]?.value ?? NaN, path: r.path }))
  const maxSeq = (): number => Math.max(0, ...rows().map((r) => r.seq))
  const firstRow = await waitFor('the first KPI row from A\'s agent', () => rows().find((r) => r.path.endsWith('/site-a')), 180_000, 250, context)
  log(`first KPI delivery after ${elapsed()} (seq ${firstRow.seq}, sample ${firstRow.value})`)
  await waitFor('a few more rows', () => maxSeq() >= firstRow.seq + 3 || undefined, 30_000, 250, context)
  t.pass(`A's agent delivers the VM's KPI rows (up to seq ${maxSeq()})`)

  await t.test('the Destination refuses at define time: the VM stays at A and runs', async (t) => {
    // A domain with the VM's UUID under another name already defined at B: B offers (it has room
    // and no domain of that name), receives the files, and libvirt refuses the define.
    const blocker = join(root, 'blocker.xml')
    const twin = `${vmId}-twin`
    await writeFile(blocker, `<domain type='qemu'><name>${twin}</name><uuid>${uuid}</uuid><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os></domain>`)
    await b.libvirt.virsh('define', blocker)
    const before = maxSeq()
    const refused = await cliA('migrate', '--vm', vmId)
    t.not(refused.code, 0, 'fedvm migrate fails')
    t.match(refused.json, { outcome: 'failed' }, `the Controller's outcome: ${JSON.stringify(refused.json)}`)
    t.ok(b.daemon!.events().some((e) => e.event === 'confirm-failed' && e.vm === vmId), 'B logged confirm-failed')
    t.equal(await state(a, vmId), 'running', 'the VM runs at A')
    t.equal((await a.libvirt.virsh('domuuid', vmId)).trim(), uuid, 'the same domain')
    t.equal(await state(b, twin), 'shut off', 'B\'s own domain with that UUID is untouched')
    t.equal(await state(b, vmId), 'absent', 'B defined nothing under the VM\'s name')
    t.notOk(existsSync(join(b.vmDir, vmId)), 'no VM directory at B')
    t.same(await leftovers(b.vmDir, vmId), [], 'nothing in B\'s incoming/confirming folders')
    await waitFor('KPI rows after the refusal', () => maxSeq() >= before + 3 || undefined, 30_000, 250, context)
    t.pass('the KPI stream goes on from A')
    await b.libvirt.virsh('undefine', twin)
  })

  await t.test('migration A → B', async (t) => {
    const before = maxSeq()
    const mark = Date.now()
    const moved = await cliA('migrate', '--vm', vmId)
    const wallMs = Date.now() - mark
    t.match(moved.json, { outcome: 'migrated', destination: 'site-b', digestsAgree: true }, `migrated to site-b (${moved.stdout.trim() || moved.stderr})`)
    const prepared = a.daemon!.events().filter((e) => e.event === 'prepared-for-leaving' && e.vm === vmId).at(-1)
    const received = b.daemon!.events().filter((e) => e.event === 'transfer-received' && e.vm === vmId).at(-1)
    log(`migration A → B: fedvm migrate ${wallMs} ms (Controller durationMs ${String(moved.json?.durationMs)}); prepare (virsh save + manifest) ${String(prepared?.ms)} ms, ` +
      `transfer ${String(received?.pullMs)} ms for ${String(received?.bytes)} bytes, define+restore ${String(received?.confirmMs)} ms`)
    t.equal(await state(b, vmId), 'running', 'running at B')
    t.equal((await b.libvirt.virsh('domuuid', vmId)).trim(), uuid, 'same UUID')
    t.equal((await a.libvirt.virsh('list', '--all', '--name')).trim(), '', 'no domain left at A')
    t.same((await readdir(a.vmDir)).filter((n) => !n.startsWith('.')), [], 'no VM directory at A')
    t.same(await leftovers(a.vmDir, vmId), [], 'no incoming/leaving/confirming entry at A')
    const status = await cliA('status')
    const records = (status.json?.locations ?? []).filter((l: { vmId: string }) => l.vmId === vmId)
    t.same(records.map((l: { kind: string, target: string }) => [l.kind, l.target]), [['partner', 'site-b']], 'A records only that the VM went to partner site-b')
    const db = new Database(join(a.dir, 'state', 'site.db'), { readonly: true })
    try {
      const open = db.prepare('SELECT "role" FROM "tokens" WHERE "vm_id" = ? AND "state" = \'open\'').all(vmId)
      t.same(open, [], 'no open transfer token for the VM at A')
      const former = db.prepare('SELECT "kind", "target" FROM "former_locations" WHERE "vm_id" = ?').all(vmId)
      log(`A's site state for the VM: location partner site-b; former locations (monitoring tombstones) ${JSON.stringify(former)}`)
    } finally {
      db.close()
    }
    await waitFor('KPI rows from B\'s agent', () => rows().some((r) => r.path.endsWith('/site-b') && r.seq > before + 3) || undefined, 90_000, 250, context)
    t.pass('B\'s agent delivers the VM\'s new rows')
    // The restored guest's clock stood still while the VM was away; B's host sets it through the guest
    // agent. Read through the agent, it is within 1 s of B's host clock (the read is bracketed by two
    // host readings), and a row's ts (the guest's clock at its commit) is behind its arrival here by
    // the delivery's latency only: the fastest rows after the setting arrive within 1 s of their ts.
    const offsets = (site: string): Array<{ seq: number, lagMs: number }> => receiver.received
      .filter((r) => r.delivery.vm === vmId && r.path.endsWith(`/${site}`) && r.delivery.samples?.length === 1)
      .map((r) => ({ seq: rowOf(r.delivery.id)!.seq, lagMs: r.at - r.delivery.samples![0].ts }))
    const lags = (): string => `row lags at A ${JSON.stringify(offsets('site-a').slice(-5))}, at B ${JSON.stringify(offsets('site-b').slice(-12))}`
    let lastProbe = 'no reading yet'
    const guestClock = await waitFor('the guest clock at B, read through its agent, within 1 s of the host\'s', async () => {
      const conn = await RpcConnection.open(b.libvirt.socketPath, 'qemu:///system', { timeoutMs: 10_000 })
      try {
        const before = Date.now()
        const guest = await getDomainTime(conn, vmId, { timeoutMs: 10_000 })
        const after = Date.now()
        lastProbe = `guest ${guest - before} ms from the host's reading before, the read took ${after - before} ms`
        return guest > before - 1000 && guest < after + 1000 ? { guest, before, after } : undefined
      } catch (err) {
        lastProbe = `reading failed: ${(err as Error).message}`
        return undefined
      } finally {
        await conn.close()
      }
    }, 60_000, 500, async () => `last reading: ${lastProbe}; ${lags()}\n${await context()}`)
    log(`guest clock at B: ${guestClock.guest - guestClock.before} ms after the host's reading before, the read took ${guestClock.after - guestClock.before} ms`)
    const synced = await waitFor('a row from B stamped within 1 s of its arrival', () => offsets('site-b').find((o) => o.lagMs >= 0 && o.lagMs < 1000), 60_000, 250, async () => `${lags()}\n${await context()}`)
    t.pass(`a KPI row written at B after the migration carries a ts within 1 s of the host's clock (seq ${synced.seq}, ${synced.lagMs} ms before its arrival)`)
    log(lags())
    // Its libvirt stats too: B's agent was told nothing about the VM.
    const metricsB = await agentMetrics(netB.name).then((r) => r.stdout)
    t.match(metricsB, new RegExp(`^libvirt_domain_info_cpu_time_seconds_total\\{[^}]*domain="${vmId}"`, 'm'), 'B\'s agent serves the VM\'s libvirt stats')
  })

  await t.test('back to A with B\'s site daemon (the Source) killed midway: the retry completes', async (t) => {
    const from = b.daemon!.events().length
    const fromA = a.daemon!.events().length
    const migrating = cliA('migrate', '--vm', vmId)
    // B's proxy is capped (see writeConfig below) so the kill lands in the middle of the copy.
    const progress = await a.daemon!.waitForEvent((e) => e.event === 'transfer-progress' && e.vm === vmId && e.bytes > 8 * 2 ** 20 && e.bytes < e.total, 120_000, fromA)
    t.ok(b.daemon!.events().slice(from).some((e) => e.event === 'prepared-for-leaving' && e.vm === vmId), 'B prepared the VM for leaving')
    await b.daemon!.stop('SIGKILL')
    t.pass(`B's site daemon SIGKILLed at ${progress.bytes} of ${progress.total} bytes`)
    await b.startDaemon()
    const outcome = await migrating
    t.match(outcome.json, { outcome: 'migrated', destination: 'site-a', local: true, digestsAgree: true }, `migrated back to A (${outcome.stdout.trim() || outcome.stderr})`)
    t.ok(outcome.json?.attempts >= 2, `Initiate was repeated (${String(outcome.json?.attempts)} attempts)`)
    t.ok(outcome.json?.reusedBytes > 0, `the retry reused what had arrived (${String(outcome.json?.reusedBytes)} bytes)`)
    t.equal(await state(a, vmId), 'running', 'running at A')
    t.equal((await a.libvirt.virsh('domuuid', vmId)).trim(), uuid, 'same UUID')
    t.equal((await b.libvirt.virsh('list', '--all', '--name')).trim(), '', 'no domain left at B')
    t.same((await readdir(b.vmDir)).filter((n) => !n.startsWith('.')), [], 'no VM directory at B')
  })

  await t.test('the KPI stream at the primary: no gap, no duplicate across the moves', async (t) => {
    const last = maxSeq()
    await waitFor('rows after the last move', () => rows().some((r) => r.path.endsWith('/site-a') && r.seq > last + 2) || undefined, 60_000, 250, context)
    // The primary site's view: what A's monitoring relay stored (from its own ingest and, relayed, from B's).
    const primary = async (): Promise<Array<{ id: string, samples?: Array<{ value: number }> }>> => {
      const q = await runFedvmIn(netA.name, ['monitor', 'query', '--config', a.configFile, '--vm', vmId, '--output', 'json'])
      if (q.code !== 0) throw new Error(`fedvm monitor query: ${q.stderr}`)
      return q.json.deliveries
    }
    const witnessed = new Set(rows().map((r) => r.seq))
    const stored = await waitFor('the primary store to hold every row the agents sent', async () => {
      const d = await primary()
      const seqs = new Set(d.map((x) => rowOf(x.id)?.seq))
      return [...witnessed].every((s) => seqs.has(s)) ? d : undefined
    }, 60_000, 250, context)
    const seqs = stored.map((d) => rowOf(d.id)!.seq).sort((x, y) => x - y)
    t.equal(new Set(stored.map((d) => rowOf(d.id)?.epoch)).size, 1, 'one guest database throughout (one epoch)')
    t.equal(new Set(seqs).size, seqs.length, `${seqs.length} rows stored at the primary, each once`)
    t.same(seqs.filter((s, i) => i > 0 && s !== seqs[i - 1] + 1), [], `rows ${seqs[0]}..${seqs.at(-1)}: no gap`)
    t.equal(seqs[0], 1, 'from the guest database\'s first row')
    const bySeq = new Map(stored.map((d) => [rowOf(d.id)!.seq, d.samples?.[0]?.value ?? NaN]))
    const values = seqs.map((s) => bySeq.get(s)!)
    t.same(values.filter((v, i) => i > 0 && v !== values[i - 1] + 1), [], 'the app\'s counter goes up by one per row: no row under two ids, none lost')
    const all = rows()
    const fromA = all.filter((r) => r.path.endsWith('/site-a')).length
    const fromB = all.filter((r) => r.path.endsWith('/site-b')).length
    const both = [...witnessed].filter((s) => all.some((r) => r.seq === s && r.path.endsWith('/site-a')) && all.some((r) => r.seq === s && r.path.endsWith('/site-b'))).length
    log(`primary: ${seqs.length} rows; the agents sent ${all.length} deliveries (A ${fromA}, B ${fromB}), ${all.length - witnessed.size} of them repeats`)
    t.equal(both, 0, 'no row reached both hosts\' agents: the guest\'s acknowledged feed position travels inside the VM')
  })

  await t.test('A never learned B\'s host names', async (t) => {
    const { stdout } = await run('grep', ['-rla', B_HOST, a.dir]).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }))
    t.same(stdout.split('\n').filter(Boolean), [], `no file of A (logs, state, monitoring store, agent) names ${B_HOST}`)
    t.notOk(printedAtA.join('\n').includes(B_HOST), 'nor does anything A\'s command line printed (the Controller\'s outcomes)')
    const control = await run('grep', ['-rla', B_HOST, b.dir]).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }))
    t.ok(control.stdout.includes('site.json'), 'the same grep finds it in B\'s own config')
  })
  log(`whole test ${elapsed()}`)
})

async function state (site: VmSite, vm: string): Promise<string> {
  return (await site.libvirt.virsh('domstate', vm).catch(() => 'absent')).trim()
}

/** The VM's entries in a host's book-keeping folders. */
async function leftovers (vmDir: string, vmId: string): Promise<string[]> {
  const found: string[] = []
  for (const folder of ['.incoming', '.leaving', '.confirming']) {
    if (existsSync(join(vmDir, folder, vmId))) found.push(`${folder}/${vmId}`)
  }
  return found
}

/** A site's agent's /metrics, read inside the site's network namespace (node's fetch: no curl on a fresh machine). */
function agentMetrics (netns: string): Promise<{ stdout: string }> {
  const script = "fetch('http://127.0.0.1:9464/metrics').then((r) => r.text()).then((text) => process.stdout.write(text))"
  return run('nsenter', [`--net=/run/netns/${netns}`, process.execPath, '-e', script], { maxBuffer: 16 * 2 ** 20 })
}
