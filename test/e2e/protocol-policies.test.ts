import t from 'tap'
import { Federation } from '../protocol/support/federation'
import { post, signAs } from '../protocol/support/signed-client'

// Site policies at an Intermediary: delegation on/off, exposure (all, local, a partner list),
// whom it accepts VMs from, and the hop budget.
t.test('delegation, exposure and acceptance policies', async (t) => {
  const fed = await Federation.create([
    { id: 'site-a', ip: '127.0.0.51' },
    { id: 'site-b', ip: '127.0.0.52', hosts: [{ id: 'b1', maxVms: 1 }], partners: ['site-a', 'site-c', 'site-d'] },
    { id: 'site-c', ip: '127.0.0.53', hosts: [{ id: 'c1', maxVms: 1 }], partners: ['site-b'] },
    { id: 'site-d', ip: '127.0.0.54', hosts: [{ id: 'd1', maxVms: 1 }, { id: 'd2', maxVms: 1 }], partners: ['site-b'] },
  ])
  t.teardown(() => fed.close())
  await fed.start('site-c', 'site-d')
  const ask = async (budget = 3): Promise<any> => {
    const answer = await post(fed, 'site-b', 'migration-request', await signAs(fed, 'site-a', 'site-b', 'migration-request', { vmId: 'vm1' }, { budget }))
    return answer.json
  }
  const withPolicy = async (policy: Record<string, unknown>): Promise<void> => {
    await fed.stop('site-b')
    await fed.reconfigure('site-b', (c) => { c.policy = policy })
    await fed.start('site-b')
  }

  await withPolicy({ delegate: true, expose: 'all' })
  const all = await ask()
  t.equal(all.offers.length, 4, 'expose all: b1, c1, d1, d2')
  t.same(all.offers.map((o: any) => o.depth).sort(), [0, 1, 1, 1])
  t.notOk(JSON.stringify(all).match(/127\.0\.0\.5[34]|https:/), 'no partner address in the offers')
  t.equal((await ask(0)).offers.length, 1, 'a request with no hop budget left is not delegated')

  await withPolicy({ delegate: true, expose: 'local' })
  t.equal((await ask()).offers.length, 1, 'expose local: only b1')

  await withPolicy({ delegate: true, expose: ['site-c'] })
  const listed = await ask()
  t.equal(listed.offers.length, 2, 'expose [site-c]: b1 and c1')

  await withPolicy({ delegate: false, expose: 'all' })
  t.equal((await ask()).offers.length, 1, 'no delegation: only b1')

  await withPolicy({ delegate: true, expose: 'all', acceptFrom: ['site-c'] })
  t.match(await ask(), { code: 'not-permitted' }, 'a site not in acceptFrom is refused')
})
