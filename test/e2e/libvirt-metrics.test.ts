import t from 'tap'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { Agent } from '../../agent/agent'
import { writeSealKeyPair } from '../../protocol/crypto/key-files'
import { LibvirtHypervisor } from '../../host/libvirt/libvirt-hypervisor'
import { hypervisorConformance } from '../host/hypervisor-conformance'
import { captureStatsFixture } from '../support/vm/capture-stats-fixture'
import { ensureGuestImage } from '../support/vm/guest-image'
import { chooseDomainType } from '../support/vm/kvm-probe'
import { LibvirtHost } from '../support/vm/libvirt-host'
import { scrape, type Scrape } from '../support/vm/metrics-http'
import { startTestDomain, waitGuestReady } from '../support/vm/test-domain'
import { waitFor } from '../support/wait'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'

// End to end: a real libvirtd + QEMU (TCG here) in a namespace of its own, a small VM with a
// disk and a NIC, the host agent (libvirt collector, specifier engine) scraped on its /metrics.

const MiB = 1024 * 1024
const CPU = 'libvirt_domain_info_cpu_time_seconds_total'

t.test('libvirt metrics from a real VM through /metrics', async t => {
  const started = Date.now()
  const image = await ensureGuestImage()
  const type = await chooseDomainType(image)
  t.comment(`guest image ready after ${Date.now() - started} ms, domain type ${type}`)

  const tag = randomBytes(3).toString('hex')
  const host = await LibvirtHost.start({ tag })
  t.teardown(async () => await host.stop())
  t.comment(`libvirtd answering after ${Date.now() - started} ms`)

  const vm = await startTestDomain(host, { name: `fedvm-${tag}-vm`, image, type })
  await waitGuestReady(vm)
  t.comment(`guest ready after ${Date.now() - started} ms`)
  const off = { name: `fedvm-${tag}-off`, uuid: '' }
  const offDomain = await startTestDomain(host, { name: off.name, image, type, paused: true })
  await host.virsh('destroy', off.name)
  off.uuid = offDomain.uuid

  const hypervisor = new LibvirtHypervisor({ socketPath: host.readOnlySocketPath })
  t.teardown(async () => await hypervisor.close())
  // The real host agent, its hypervisor set to this libvirtd, and a descriptor asking for the mean cpu time.
  const logs: string[] = []
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-libvirt-agent-'))
  t.teardown(async () => await rm(dir, { recursive: true, force: true }))
  const publicKey = await writeSealKeyPair(join(dir, 'keys'))
  await writeFile(join(dir, 'descriptor.json'), JSON.stringify({
    id: vm.name,
    primarySite: { id: 'site-a', publicKey },
    monitoring: [{ metric: 'cpu.time', monitoringIntervalMs: 0, deliveryIntervalMs: 2000, format: 'processed', function: 'mean' }]
  }))
  await writeFile(join(dir, 'agent.json'), JSON.stringify({
    listen: '127.0.0.1:0',
    stateDir: join(dir, 'state'),
    vms: [{ name: vm.name, descriptor: 'descriptor.json' }],
    hypervisor: { type: 'libvirt', socket: host.readOnlySocketPath, pollIntervalMs: 500 }
  }))
  const agent = await Agent.start(join(dir, 'agent.json'), m => { if (!m.startsWith('agent: ')) logs.push(m) })
  t.teardown(async () => await agent.stop())
  const endpoint = { url: agent.metricsUrl }
  const dom = { domain: vm.name, uuid: vm.uuid }

  await t.test('the Hypervisor conformance suite passes against the real libvirt', async t => {
    await hypervisorConformance(t as never, {
      hypervisor,
      running: vm,
      inactive: off,
      restartDaemon: async () => await host.restartLibvirtd()
    })
  })

  await t.test('virDomainGetVcpus: each vCPU\'s state and time, as the vcpu statistics group reports them', async t => {
    const ref = (await hypervisor.listDomains()).find(d => d.uuid === vm.uuid)!
    const [stats] = await hypervisor.getDomainStats({ domains: [ref], groups: ['vcpu'] })
    const vcpus = await hypervisor.getVcpus(ref, stats.vcpu!.maximum)
    t.same(vcpus.map(v => v.index), stats.vcpu!.vcpus.map(v => v.index), 'the same vCPUs')
    t.same(vcpus.map(v => v.state), stats.vcpu!.vcpus.map(v => v.state), 'the same states')
    vcpus.forEach((v, i) => {
      const before = stats.vcpu!.vcpus[i].timeNs!
      t.ok(v.timeNs >= before - 10e6 && v.timeNs < before + 5e9, `vcpu ${v.index}: ${v.timeNs} ns, the group said ${before} just before (/proc counts in 10 ms ticks)`)
    })
  })

  if (process.env.FEDVM_CAPTURE_FIXTURES === '1') {
    await captureStatsFixture(host.socketPath, join(__dirname, '..', 'host', 'fixtures'), 'e2e-capture')
  }

  await t.test('cpu time grows, in seconds', async t => {
    const first = await scrape(endpoint.url)
    t.equal(first.value('libvirt_up'), 1, 'libvirt_up 1')
    t.equal(first.value('fedvm_collector_success', { collector: 'libvirt' }), 1, 'collector succeeded')
    const cpu1 = first.value(CPU, dom) ?? 0
    const vmAgeSeconds = (Date.now() - started) / 1000
    t.ok(cpu1 > 0 && cpu1 < vmAgeSeconds * 2 + 5, `cpu time ${cpu1} s is positive and below the VM's age × 2 cores (${vmAgeSeconds.toFixed(1)} s): seconds, not ns`)
    const cpu2 = await waitFor('cpu time to grow', async () => {
      const v = (await scrape(endpoint.url)).value(CPU, dom) ?? 0
      return v > cpu1 ? v : undefined
    }, 15_000, 500)
    t.ok(cpu2 > cpu1, `cpu time grew from ${cpu1} to ${cpu2}`)
    t.equal(first.value('libvirt_domain_info_state', dom), 1, 'state 1 (running)')
    t.ok((first.value('libvirt_domain_vcpu_time_seconds_total', { ...dom, vcpu: '0' }) ?? -1) >= 0, 'vcpu 0 time')
    t.ok(first.value('libvirt_domain_vcpu_delay_seconds_total', { ...dom, vcpu: '0' }) !== undefined, 'vcpu 0 delay')
  })

  await t.test('a descriptor asks for the mean cpu time: the specifier engine delivers it', async t => {
    const mean = await waitFor('the processed cpu.time', async () => {
      const v = (await scrape(endpoint.url)).value('fedvm_kpi_processed', { domain: vm.name, metric: 'cpu.time', function: 'mean' })
      return v !== undefined ? v : undefined
    }, 15_000, 500)
    const vmAgeSeconds = (Date.now() - started) / 1000
    t.ok(mean > 0 && mean < vmAgeSeconds * 2 + 5, `mean cpu time ${mean} s over the window, in seconds`)
  })

  await t.test('memory, block and interface series are present in bytes', async t => {
    const s = await waitFor<Scrape>('guest memory statistics from the balloon driver', async () => {
      const s = await scrape(endpoint.url)
      return s.value('libvirt_domain_memory_stats_usable_bytes', dom) !== undefined ? s : undefined
    }, 30_000, 500)
    t.equal(s.value('libvirt_domain_info_memory_usage_bytes', dom), 128 * MiB, '128 MiB domain: memory in bytes (KiB × 1024)')
    t.equal(s.value('libvirt_domain_info_maximum_memory_bytes', dom), 128 * MiB, 'maximum memory in bytes')
    const rss = s.value('libvirt_domain_memory_stats_rss_bytes', dom) ?? 0
    t.ok(rss > 32 * MiB && rss < 4096 * MiB, `QEMU rss ${rss} is in bytes`)
    const usable = s.value('libvirt_domain_memory_stats_usable_bytes', dom) ?? 0
    t.ok(usable > 8 * MiB && usable < 128 * MiB, `guest usable memory ${usable} is in bytes, below the domain's 128 MiB`)
    const vda = { ...dom, target_device: 'vda' }
    t.equal(s.value('libvirt_domain_block_stats_capacity_bytes', vda), 8 * MiB, 'disk vda: 8 MiB capacity')
    t.ok((s.value('libvirt_domain_block_stats_read_bytes_total', vda) ?? 0) > 0, 'disk vda: bytes read')
    const written = await waitFor('the guest to write to vda', async () => {
      const v = (await scrape(endpoint.url)).value('libvirt_domain_block_stats_write_bytes_total', vda) ?? 0
      return v > 0 ? v : undefined
    }, 20_000, 500)
    t.ok(written % 512 === 0, `disk vda: ${written} bytes written, whole sectors`)
    const nic = s.find('libvirt_domain_interface_stats_transmit_packets_total', dom)
    t.equal(nic.length, 1, 'one interface')
    const iface = { ...dom, target_device: nic[0]?.labels.target_device ?? '' }
    const rx = await waitFor('the guest to answer on the bridge (ping replies)', async () => {
      const v = (await scrape(endpoint.url)).value('libvirt_domain_interface_stats_receive_bytes_total', iface) ?? 0
      return v > 0 ? v : undefined
    }, 20_000, 500)
    t.ok(rx > 0, `interface ${iface.target_device}: ${rx} bytes received`)
    t.equal(s.value('libvirt_domain_info_state', { domain: off.name, uuid: off.uuid }), 5, 'the shut-off domain: state 5 only')
    t.same(s.withLabel('uuid', off.uuid).map(x => x.name), ['libvirt_domain_info_state'], 'no usage series for a shut-off domain')
  })

  await t.test('a domain whose QEMU hangs is reported timed out; the others are not held up', async t => {
    const stuck = await startTestDomain(host, { name: `fedvm-${tag}-stuck`, image, type, paused: true })
    // Four active domains: the collector reads them in two bulk calls at once, the stuck one's and another.
    const others = [
      await startTestDomain(host, { name: `fedvm-${tag}-p1`, image, type, paused: true, memoryMiB: 64 }),
      await startTestDomain(host, { name: `fedvm-${tag}-p2`, image, type, paused: true, memoryMiB: 64 })
    ]
    const paused = (s: Scrape): string[] => others.filter(o => s.value('libvirt_domain_info_state', { domain: o.name, uuid: o.uuid }) === 3).map(o => o.name)
    t.same(paused(await scrape(endpoint.url)), others.map(o => o.name), 'the other paused domains are reported')
    const pid = await host.qemuPid(stuck.name)
    process.kill(pid, 'SIGSTOP')
    t.teardown(() => { try { process.kill(pid, 'SIGCONT') } catch { /* already gone */ } })
    const begin = Date.now()
    const s = await scrape(endpoint.url)
    const took = Date.now() - begin
    t.ok(took < 6000, `the scrape took ${took} ms, within the collector deadline`)
    t.equal(s.value('libvirt_domain_timed_out', { domain: stuck.name, uuid: stuck.uuid }), 1, 'the stuck domain is reported timed out')
    t.same(s.withLabel('uuid', stuck.uuid).map(x => x.name), ['libvirt_domain_timed_out'], 'and none of its other series')
    t.ok((s.value(CPU, dom) ?? 0) > 0, 'the running domain is still reported')
    t.same(paused(s), others.map(o => o.name), 'and so are the other paused domains, whichever call they were in')
    const next = Date.now()
    const again = await scrape(endpoint.url)
    t.ok(Date.now() - next < 2000, 'the next scrape skips the stuck domain without waiting again')
    t.equal(again.value('libvirt_domain_timed_out', { domain: stuck.name, uuid: stuck.uuid }), 1, 'still reported timed out')
    process.kill(pid, 'SIGCONT')
    const back = await waitFor('the stuck domain to come back', async () => {
      const s = await scrape(endpoint.url)
      return s.value('libvirt_domain_info_state', { domain: stuck.name, uuid: stuck.uuid }) !== undefined ? s : undefined
    }, 20_000, 500)
    t.equal(back.value('libvirt_domain_info_state', { domain: stuck.name, uuid: stuck.uuid }), 3, 'after SIGCONT: reported again, paused (3)')
    t.equal(back.value('libvirt_domain_timed_out', { domain: stuck.name, uuid: stuck.uuid }), undefined, 'no longer timed out')
    for (const d of [stuck, ...others]) {
      await host.virsh('destroy', d.name)
      await host.virsh('undefine', d.name)
    }
  })

  await t.test('stopping the domain removes its series; undefining removes it entirely', async t => {
    t.ok((await scrape(endpoint.url)).withLabel('uuid', vm.uuid).length > 30, 'many series while running')
    await host.virsh('destroy', vm.name)
    const stopped = await scrape(endpoint.url)
    t.same(stopped.withLabel('uuid', vm.uuid).map(x => x.name), ['libvirt_domain_info_state'], 'only the state series is left')
    t.equal(stopped.value('libvirt_domain_info_state', dom), 5, 'state 5 (shut off)')
    t.equal(stopped.value(CPU, dom), undefined, 'no cpu time')
    t.equal(stopped.find('libvirt_domain_block_stats_write_bytes_total', dom).length, 0, 'no block series')
    await host.virsh('undefine', vm.name)
    const gone = await scrape(endpoint.url)
    t.equal(gone.withLabel('uuid', vm.uuid).length, 0, 'no series once undefined')
    t.equal(gone.value('libvirt_up'), 1, 'libvirt still up')
  })

  // The conformance suite restarts libvirtd on purpose: the data-point poller says so once.
  t.same(logs.filter(l => !/is stuck|data points: hypervisor read failed/.test(l)), [], 'nothing else was logged')
  t.comment(`whole test ${Date.now() - started} ms`)
})
