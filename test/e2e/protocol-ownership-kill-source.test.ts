import t from 'tap'
import { join } from 'node:path'
import { Federation } from '../protocol/support/federation'
import { FedvmDaemon } from '../protocol/support/fedvm-process'
import { digestsOf, makeVmDir } from '../protocol/support/vm-files'
import { describeViews, settled, siteView, type SiteView } from '../support/federation/ownership'
import { waitFor } from '../support/wait'

t.setTimeout(5 * 60_000)

const MiB = 1024 * 1024
const VM = 'vm-k'

// The reproduction: a is Controller and Destination (host a1), b the Source (host b2, its proxy
// throttled). b dies (SIGKILL) after a logged transfer-received, before the transfer is verified: b is
// armed to kill itself when the verification reaches it (FEDVM_FAULT_POINT=source:verified), which
// hits that window every time, where a kill on seeing a's log line races the verification. b stays
// down until fedvm migrate has answered, then comes back: the VM must end up runnable at exactly the
// site that answer names, and nothing may stay in doubt.
t.test('the Source killed between transfer-received and verification: one owner, the one fedvm migrate named', async (t) => {
  const fed = await Federation.create([
    { id: 'site-a', ip: '127.0.0.61', hosts: [{ id: 'a1', maxVms: 0 }], partners: ['site-b'], limits: { settleRetryMaxMs: 1000, initiateAttempts: 3 } },
    { id: 'site-b', ip: '127.0.0.62', hosts: [{ id: 'b2', maxVms: 1 }], partners: ['site-a'], maxBytesPerSecond: 4 * MiB, limits: { settleRetryMaxMs: 1000 } },
  ])
  t.teardown(() => fed.close())
  await fed.start('site-a')
  process.env.FEDVM_FAULT_POINT = 'source:verified'
  const startingB = fed.start('site-b') // spawns at once, with the variable; only b is armed
  delete process.env.FEDVM_FAULT_POINT
  await startingB
  const image = join(fed.root, 'image')
  const digests = await makeVmDir(image, { 'disk.img': 8 * MiB + 3, 'domain.xml': 800 })
  // a1 takes no VM yet: the placement goes to b2. Then a1 gets room, so the migration comes back to a.
  const placed = await fed.cli('site-a', 'place', '--vm', VM, '--dir', image)
  t.match(placed.json, { outcome: 'migrated', destination: 'site-b' }, 'placed on b2')
  await fed.stop('site-a')
  await fed.reconfigure('site-a', (config) => { config.hosts[0].maxVms = 1 })
  await fed.start('site-a')

  const views = (): SiteView[] => [siteView(fed, 'site-a', VM, ['a1']), siteView(fed, 'site-b', VM, ['b2'])]
  const runnable = (vs: SiteView[]): string[] => vs.flatMap((v) => v.runnable.map((h) => `${v.site}/${h}`))

  const migrate = new FedvmDaemon(['migrate', '--config', fed.site('site-a').configFile, '--vm', VM])
  t.teardown(() => migrate.stop('SIGKILL'))
  let out = ''
  migrate.child.stdout!.on('data', (d) => { out += d })
  const exited = new Promise<number | null>((resolve) => migrate.child.once('exit', (code) => resolve(code)))
  const bDaemon = fed.daemon('site-b')
  const killed = new Promise<NodeJS.Signals | null>((resolve) => bDaemon.child.once('exit', (_code, signal) => resolve(signal)))
  await fed.daemon('site-a').waitForEvent((e) => e.event === 'transfer-received' && e.vm === VM, 60_000)
  t.equal(await killed, 'SIGKILL', 'b was killed after a received the files')
  t.notOk(fed.daemon('site-a').events().some((e) => e.event === 'migration-decided' && e.decision !== 'abort' && e.vm === VM), 'before any commit was decided')
  const code = await exited
  const answer = JSON.parse(out) as { outcome: string, code?: string, detail?: string }
  const expected = code === 0 ? 'site-a' : 'site-b'
  t.equal(code, 1, 'with b down throughout, the migration fails')
  t.comment(`fedvm migrate: exit ${String(code)}, ${out.trim().replace(/\s+/g, ' ')}`)
  if (code !== 0) t.match(answer, { outcome: 'failed' }, 'the migration failed: the VM stays at b')

  // While b is down: never more than one runnable copy, and a never runs a VM it was not told it owns.
  const whileDown = views()
  t.ok(runnable(whileDown).length <= 1, `at most one runnable copy while b is down (${describeViews(whileDown)})`)
  if (code !== 0) t.same(whileDown[0].runnable, [], 'a does not run the VM after telling the user it stays at b')

  await fed.start('site-b')
  const final = await waitFor('both sites to settle', () => {
    const vs = views()
    if (runnable(vs).length > 1) throw new Error(`two runnable copies: ${describeViews(vs)}`)
    return settled(vs) ? vs : undefined
  }, 60_000, 100, () => describeViews(views()) + '\n' + fed.daemon('site-a').stderr.split('\n').slice(-20).join('\n'))
  const [a, b] = final
  const owner = expected === 'site-a' ? a : b
  const other = expected === 'site-a' ? b : a
  t.equal(owner.location, expected === 'site-a' ? 'host:a1' : 'host:b2', `the site fedvm migrate named lists the VM on its host (${describeViews(final)})`)
  t.same(runnable(final), [expected === 'site-a' ? 'site-a/a1' : 'site-b/b2'], 'and only its host can run it')
  t.equal(other.location, expected === 'site-a' ? undefined : 'partner:site-b', 'the other site lists it nowhere of its own')
  t.same(await digestsOf(join(fed.vmDir(expected, expected === 'site-a' ? 'a1' : 'b2'), VM)), digests, 'its files are complete')
  t.ok(fed.daemon('site-a').events().some((e) => e.event === 'migration-decided' && e.vm === VM), 'a recorded a decision')
})
