import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { FAULT_POINTS, type FaultPoint } from '../../protocol/roles/fault-point'
import { Federation } from '../protocol/support/federation'
import { runFedvm, type CliResult } from '../protocol/support/fedvm-process'
import { digestsOf, makeVmDir } from '../protocol/support/vm-files'
import { startWithFaultFile } from '../support/federation/fault-file'
import { describeViews, settled, siteView, type SiteView } from '../support/federation/ownership'
import { seededRandom, shuffled } from '../support/seeded-random'
import { waitFor } from '../support/wait'

// Jepsen-style: the VM is never in two places. Site a is the Controller (primary), b an Intermediary,
// c and d hold the VM in turn (a → b → c|d). Each run migrates the VM between c and d with one site
// armed to SIGKILL itself at one protocol step (FEDVM_FAULT_POINT, protocol/roles/fault-point.ts),
// restarts it, and checks: at every sample at most one runnable copy; once settled, exactly one site
// lists the VM on a host, its files are complete there, nothing is held anywhere else, and the
// chain of records leads to it. Each daemon reads its armed step from a file of its own
// (FEDVM_FAULT_POINT_FILE), so arming needs no restart. The order of the steps comes from a seed the test prints:
// FEDVM_FAULT_SEED=N replays a schedule, FEDVM_FAULT_ONLY=role:step runs one step.

// About 75 s at a load of 15 on two cores; a fully loaded CI machine may need three times that.
t.setTimeout(10 * 60_000)

const VM = 'vm-j'
const HOSTS: Record<string, string[]> = { 'site-a': [], 'site-b': [], 'site-c': ['c1'], 'site-d': ['d1'] }
const LIMITS = { settleRetryMaxMs: 1000, initiateAttempts: 3 }

const seed = Number(process.env.FEDVM_FAULT_SEED ?? Math.floor(Math.random() * 2 ** 31))
const only = process.env.FEDVM_FAULT_ONLY
const schedule: FaultPoint[] = only === undefined ? shuffled(FAULT_POINTS, seededRandom(seed)) : FAULT_POINTS.filter((p) => p === only)

t.test('a SIGKILL at any step of a migration leaves the VM runnable at exactly one site', async (t) => {
  const line = `fault schedule: FEDVM_FAULT_SEED=${seed} → ${schedule.join(' ')}`
  t.comment(line)
  console.error(line)
  const fed = await Federation.create([
    { id: 'site-a', ip: '127.0.0.51', partners: ['site-b'], policy: { delegate: true, expose: 'all' }, limits: LIMITS },
    { id: 'site-b', ip: '127.0.0.52', partners: ['site-a', 'site-c', 'site-d'], policy: { delegate: true, expose: 'all' }, limits: LIMITS },
    { id: 'site-c', ip: '127.0.0.53', hosts: [{ id: 'c1', maxVms: 2 }], partners: ['site-b'], limits: LIMITS },
    { id: 'site-d', ip: '127.0.0.54', hosts: [{ id: 'd1', maxVms: 2 }], partners: ['site-b'], limits: LIMITS },
  ])
  t.teardown(() => fed.close())
  const faultFile = (id: string): string => join(fed.root, `${id}.fault`)
  await Promise.all(Object.keys(HOSTS).map(async (id) => writeFile(faultFile(id), '')))
  await startWithFaultFile(fed, Object.keys(HOSTS), faultFile)
  const image = join(fed.root, 'image')
  const digests = await makeVmDir(image, { 'disk.img': 3 * 1024 * 1024 + 7, 'domain.xml': 900 })
  const placed = await fed.cli('site-a', 'place', '--vm', VM, '--dir', image)
  t.equal(placed.code, 0, `placed: ${placed.raw.stdout}${placed.raw.stderr}`)

  const views = (): SiteView[] => Object.entries(HOSTS).map(([site, hosts]) => siteView(fed, site, VM, hosts))
  const holderOf = (vs: SiteView[]): string | undefined => vs.find((v) => v.runnable.length > 0 && v.location?.startsWith('host:') === true)?.site

  for (const [index, point] of schedule.entries()) {
    const before = views()
    const source = holderOf(before)
    if (source === undefined) throw new Error(`run ${index}: nobody holds the VM before the run: ${describeViews(before)}`)
    const destination = source === 'site-c' ? 'site-d' : 'site-c'
    const role = point.slice(0, point.indexOf(':'))
    const target = role === 'controller' ? 'site-a' : role === 'intermediary' ? 'site-b' : role === 'source' ? source : destination

    await t.test(`run ${index + 1}/${schedule.length}: ${point} (${target}), ${source} → ${destination}`, async (t) => {
      await writeFile(faultFile(target), point)
      const daemon = fed.daemon(target)
      const killed = new Promise<boolean>((resolve) => daemon.child.once('exit', (_code, signal) => resolve(signal === 'SIGKILL')))
      let cliDone = false
      const migrating = runFedvm(['migrate', '--config', fed.site('site-a').configFile, '--vm', VM]).finally(() => { cliDone = true })

      // At every sample from here on: never two runnable copies.
      let samples = 0
      const check = (): SiteView[] => {
        const vs = views()
        samples++
        const runnable = vs.flatMap((v) => v.runnable.map((h) => `${v.site}/${h}`))
        if (runnable.length > 1) throw new Error(`two runnable copies: ${describeViews(vs)}`)
        return vs
      }
      const wasKilled = await waitFor(`${target} to reach ${point} or the migration to end`, async () => {
        check()
        if (!daemon.alive) return 'killed'
        if (cliDone) return 'not-reached'
        return undefined
      }, 60_000, 50)
      await writeFile(faultFile(target), '')
      if (wasKilled === 'killed') {
        t.ok(await killed, `${target} killed itself at ${point}`)
        await startWithFaultFile(fed, [target], faultFile)
      } else {
        t.comment(`${point} was not reached in this run`)
      }
      const answer: CliResult = await migrating
      const final = await waitFor('every site to settle', () => {
        const vs = check()
        return settled(vs) ? vs : undefined
      }, 60_000, 100, () => describeViews(views()))

      t.same(Object.keys(HOSTS).filter((id) => !fed.daemon(id).alive), [], 'no daemon died but the one armed')
      const owners = final.filter((v) => v.location?.startsWith('host:') === true)
      t.equal(owners.length, 1, `exactly one site lists the VM on a host (${describeViews(final)})`)
      const owner = owners[0]
      t.same(final.flatMap((v) => v.runnable.map((h) => `${v.site}/${h}`)), [`${owner.site}/${owner.location!.slice('host:'.length)}`], 'and only its host has a runnable copy')
      t.same(await digestsOf(join(fed.vmDir(owner.site, owner.location!.slice('host:'.length)), VM)), digests, 'its files are complete there')
      const other = final.find((v) => v.site === (owner.site === 'site-c' ? 'site-d' : 'site-c'))!
      t.equal(other.location, undefined, 'the other host site has no record of it')
      t.equal(final.find((v) => v.site === 'site-a')?.location, 'partner:site-b', 'the Controller delegates it to b')
      t.equal(final.find((v) => v.site === 'site-b')?.location, `partner:${owner.site}`, 'and b to the site that holds it')
      if (answer.code === 0) t.equal(owner.site, destination, `fedvm migrate said migrated: the VM is at the destination (${answer.stdout.trim()})`)
      else if (answer.json?.outcome === 'failed' && target !== 'site-a') t.equal(owner.site, source, `fedvm migrate said it failed (${String(answer.json?.code)}): the VM stays at the source`)
      t.comment(`${point}: ${answer.code === 0 ? 'migrated' : `failed (${String(answer.json?.code ?? answer.stderr.trim().slice(0, 80))})`}, VM at ${owner.site}, ${samples} samples`)
    })
  }
})
