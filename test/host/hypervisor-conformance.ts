/**
 * What every Hypervisor implementation promises (host/hypervisor.ts), checked the same way against
 * the fake (test/host/fake-hypervisor.test.ts) and the real libvirt (test/e2e/libvirt-metrics.test.ts).
 * The subject brings one running domain (with disk vda and one interface) and one defined but
 * shut-off domain; `restartDaemon`, when given, restarts the hypervisor's daemon under the client.
 */
import { randomUUID } from 'node:crypto'
import type { Hypervisor } from '../../host/hypervisor'
import { HypervisorError } from '../../host/errors'

export interface ConformanceSubject {
  hypervisor: Hypervisor
  running: { name: string, uuid: string }
  inactive: { name: string, uuid: string }
  restartDaemon?: () => Promise<void>
}

interface Tap {
  test: (name: string, fn: (t: Tap) => Promise<void>) => Promise<unknown>
  ok: (v: unknown, m?: string) => void
  equal: (a: unknown, b: unknown, m?: string) => void
  same: (a: unknown, b: unknown, m?: string) => void
  match: (a: unknown, b: unknown, m?: string) => void
  rejects: (p: Promise<unknown>, e: object, m?: string) => Promise<void>
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

export async function hypervisorConformance (t: Tap, subject: ConformanceSubject): Promise<void> {
  const { hypervisor: hv, running, inactive } = subject

  await t.test('listDomains: active and inactive domains, with uuid and id', async t => {
    const domains = await hv.listDomains()
    const r = domains.find(d => d.uuid === running.uuid)
    const i = domains.find(d => d.uuid === inactive.uuid)
    t.ok(r !== undefined && i !== undefined, 'both domains are listed')
    t.equal(r?.name, running.name)
    t.ok((r?.id ?? -1) >= 0, 'a running domain has an id')
    t.equal(i?.id, -1, 'an inactive domain has id -1')
    for (const d of domains) t.match(d.uuid, UUID, `${d.name} has a canonical uuid`)
  })

  await t.test('getDomainStats: one bulk call reports every domain', async t => {
    const stats = await hv.getDomainStats()
    const r = stats.find(d => d.uuid === running.uuid)
    const i = stats.find(d => d.uuid === inactive.uuid)
    t.equal(r?.state.code, 1, 'running domain: state 1')
    t.equal(i?.state.code, 5, 'inactive domain: state 5 (shut off)')
    t.ok((r?.cpu?.timeNs ?? 0) > 0, 'running domain: cpu time reported')
    const vda = r?.blocks.find(b => b.name === 'vda')
    t.ok((vda?.capacity ?? 0) > 0, 'running domain: disk vda with its capacity')
    t.ok((r?.interfaces.length ?? 0) >= 1, 'running domain: its interface')
    t.ok((r?.balloon?.currentKiB ?? 0) > 0, 'running domain: balloon size')
    t.ok((r?.vcpu?.current ?? 0) >= 1, 'running domain: vcpus')
  })

  await t.test('getDomainStats for chosen domains; one that vanished is left out', async t => {
    const domains = await hv.listDomains()
    const r = domains.find(d => d.uuid === running.uuid)
    if (r === undefined) throw new Error('running domain not listed')
    const one = await hv.getDomainStats({ domains: [r] })
    t.same(one.map(d => d.uuid), [running.uuid], 'exactly the domain asked for')
    const gone = { name: 'fedvm-vanished', uuid: randomUUID(), id: 999 }
    const withGone = await hv.getDomainStats({ domains: [r, gone] })
    t.same(withGone.map(d => d.uuid), [running.uuid], 'the vanished domain is left out, the other reported')
    t.same(await hv.getDomainStats({ domains: [] }), [], 'an empty list asks for no domain')
  })

  await t.test('getDomainStats for chosen groups reports those (and the state) only', async t => {
    const stats = await hv.getDomainStats({ groups: ['cpu', 'interface'] })
    const r = stats.find(d => d.uuid === running.uuid)
    t.equal(r?.state.code, 1, 'state is always reported')
    t.ok((r?.cpu?.timeNs ?? 0) > 0, 'cpu asked for: reported')
    t.ok((r?.interfaces.length ?? 0) >= 1, 'interface asked for: reported')
    t.equal(r?.balloon, undefined, 'no balloon')
    t.equal(r?.vcpu, undefined, 'no vcpu')
    t.same(r?.blocks, [], 'no block')
    const blocks = (await hv.getDomainStats({ groups: ['block'] })).find(d => d.uuid === running.uuid)
    t.ok((blocks?.blocks.find(b => b.name === 'vda')?.capacity ?? 0) > 0, 'block alone: vda with its capacity')
    t.equal(blocks?.cpu, undefined, 'and no cpu')
  })

  await t.test('cpu time of a running domain never goes back', async t => {
    const first = (await hv.getDomainStats()).find(d => d.uuid === running.uuid)?.cpu?.timeNs ?? 0
    await new Promise(resolve => setTimeout(resolve, 200))
    const second = (await hv.getDomainStats()).find(d => d.uuid === running.uuid)?.cpu?.timeNs ?? 0
    t.ok(second >= first && first > 0, `${second} >= ${first}`)
  })

  await t.test('getDomainDetails: state, resources and control channel; unknown uuid is DOMAIN_NOT_FOUND', async t => {
    const d = await hv.getDomainDetails(running.uuid)
    t.equal(d.name, running.name)
    t.same(d.state, { code: 1, name: 'running' })
    t.equal(d.control.state, 'ok')
    t.ok(d.vcpus >= 1 && d.memoryKiB > 0 && d.maxMemoryKiB >= d.memoryKiB, 'vcpus and memory')
    const off = await hv.getDomainDetails(inactive.uuid)
    t.same(off.state, { code: 5, name: 'shutoff' })
    t.equal(off.id, -1)
    await t.rejects(hv.getDomainDetails(randomUUID()), { code: 'DOMAIN_NOT_FOUND' })
  })

  await t.test('an aborted call rejects with ABORTED', async t => {
    const controller = new AbortController()
    controller.abort()
    await t.rejects(hv.getDomainStats({ signal: controller.signal }), { code: 'ABORTED' })
    await t.rejects(hv.listDomains(controller.signal), new HypervisorError('ABORTED', 'call aborted'))
  })

  if (subject.restartDaemon !== undefined) {
    const restart = subject.restartDaemon
    await t.test('after the daemon restarts, the next call works again (reconnect)', async t => {
      t.ok((await hv.listDomains()).length >= 2, 'works before')
      await restart()
      const after = await hv.getDomainStats()
      t.ok(after.some(d => d.uuid === running.uuid && d.state.code === 1), 'the running domain is reported after the restart')
    })
  }
}
