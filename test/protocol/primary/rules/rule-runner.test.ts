import t from 'tap'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { encodeKey } from '../../../../protocol/crypto/key-files'
import { generateBoxKeyPair, seal } from '../../../../protocol/crypto/sealed-box'
import { ProtocolError } from '../../../../protocol/errors'
import type { Delivery } from '../../../../protocol/relay/delivery'
import { RuleRunner } from '../../../../protocol/primary/rules/rule-runner'
import { RulesSchema } from '../../../../protocol/primary/rules/rules-config'
import { SealedOpener } from '../../../../protocol/primary/sealed-opener'

// The runner with a stand-in for the Controller (the real one runs in rule-forced-migration.test.ts).
t.test('rule runner: logging, sealed values, one forced migration per VM at a time', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-rule-runner-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const keys = await generateBoxKeyPair()
  await writeFile(join(dir, 'seal.key'), encodeKey(keys.secretKey))
  const sealedValue = async (value: number): Promise<string> => (await seal(Buffer.from(JSON.stringify({ function: 'max', value })), keys.publicKey)).toString('base64')

  const events: Array<Record<string, unknown>> = []
  const started: string[] = []
  let finish: (() => void) | undefined
  const runner = new RuleRunner({
    rules: RulesSchema.parse([
      { name: 'revenue-drop', when: 'max(kpi:billing.revenue) < 100' },
      { name: 'busy', when: 'kpi:users.n > 10', action: 'forced-migration', cooldownMs: 0 },
    ]),
    opener: await SealedOpener.load(dir),
    log: (e) => events.push(e),
    forceMigration: (vm) => {
      started.push(vm)
      if (vm === 'vm-fails') return Promise.reject(new ProtocolError('no-placement', 'no destination offered to take the VM'))
      return new Promise((resolve) => { finish = () => resolve({ outcome: 'migrated', destination: 'site-b' }) })
    },
  })
  const d = (id: string, vm: string, metric: string, to: number, more: Partial<Delivery>): Delivery => ({ id, vm, metric, format: 'processed', function: 'max', from: to, to, ...more })

  runner.handle([d('r1', 'vm1', 'kpi:billing.revenue', 1000, { sealed: await sealedValue(12.75) }), d('x', 'vm1', 'kpi:unrelated', 1000, { value: 1 })])
  await runner.idle()
  t.match(events, [{ event: 'rule-fired', rule: 'revenue-drop', vm: 'vm1', sealed: true, action: 'log' }], 'a sealed value is compared after opening')
  t.notOk(JSON.stringify(events).includes('12.75'), 'and never logged')

  runner.handle([d('r2', 'vm1', 'kpi:billing.revenue', 2000, { sealed: Buffer.alloc(80, 7).toString('base64') })])
  await runner.idle()
  t.match(events[1], { event: 'rule-delivery-unreadable', id: 'r2', code: 'sealed-unreadable' }, 'an unreadable delivery is logged by id')

  events.length = 0
  runner.handle([d('n1', 'vm1', 'kpi:users.n', 1000, { value: 50 })])
  await new Promise((resolve) => setImmediate(resolve))
  runner.handle([d('n2', 'vm1', 'kpi:users.n', 2000, { value: 1 }), d('n3', 'vm1', 'kpi:users.n', 3000, { value: 60 })])
  runner.handle([d('f1', 'vm-fails', 'kpi:users.n', 1000, { value: 99 })])
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.same(started, ['vm1', 'vm-fails'], 'the second breach of vm1 does not start a second migration while the first runs')
  t.match(events.filter((e) => e.event !== 'rule-fired'), [
    { event: 'rule-action-skipped', rule: 'busy', vm: 'vm1' },
    { event: 'rule-action-failed', rule: 'busy', vm: 'vm-fails', code: 'no-placement' },
  ])
  finish!()
  await runner.idle()
  t.match(events.at(-1), { event: 'rule-action-done', rule: 'busy', vm: 'vm1', result: { outcome: 'migrated' } })
  t.equal(events.filter((e) => e.event === 'rule-fired').length, 3)
})
