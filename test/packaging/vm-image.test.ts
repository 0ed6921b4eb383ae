import t from 'tap'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Agent } from '../../agent/agent'
import { writeSealKeyPair } from '../../protocol/crypto/key-files'
import { LibvirtHost } from '../support/vm/libvirt-host'
import { scrape } from '../support/vm/metrics-http'
import { waitFor } from '../support/wait'
import { ensureDeb, ensureVmImage } from './support/artifacts'

// packaging/vm-image/build's image boots under libvirt (TCG) from its domain template; udev starts
// the packaged fedvm-guestfs when the org.fedvm.kpi.0 port appears, the sample application writes
// /kpi/unencrypted/users every second, and the host agent, following the channel's socket, shows
// those KPIs on /metrics.

const run = promisify(execFile)
// The first run on a machine debootstraps (3-6 min) before anything else; later runs take 1-2 min.
t.setTimeout(15 * 60_000)
const log = (line: string): void => { t.comment(line) }

t.test('the VM image boots, guestfs starts by itself and the agent sees the sample KPIs', async (t) => {
  const started = Date.now()
  const elapsed = (): string => `${Math.round((Date.now() - started) / 1000)} s`
  const image = await ensureVmImage(await ensureDeb(log), log)
  const info = JSON.parse(await readFile(join(image.dir, 'build-info.json'), 'utf8')) as { qcow2Bytes: number, kernel: string }
  log(`image ready after ${elapsed()}: ${Math.round(info.qcow2Bytes / 2 ** 20)} MiB qcow2, kernel ${info.kernel}`)
  t.ok(info.qcow2Bytes <= 400 * 2 ** 20, 'the image is at most 400 MB')

  const tag = randomBytes(3).toString('hex')
  const host = await LibvirtHost.start({ tag })
  t.teardown(async () => await host.stop())
  const name = `fedvm-${tag}-img`
  const disk = join(host.dir, `${name}.qcow2`)
  const channel = join(host.dir, `${name}.kpi.sock`)
  const consoleLog = join(host.dir, `${name}.console.log`)
  // A copy-on-write overlay keeps the cached image pristine.
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', image.qcow2, '-F', 'qcow2', disk])
  const template = await readFile(image.domainTemplate, 'utf8')
  const fill: Record<string, string> = { NAME: name, DISK: disk, KERNEL: image.kernel, INITRD: image.initramfs, CHANNEL: channel, CONSOLE: consoleLog }
  const xml = template.replace(/@([A-Z]+)@/g, (_, key: string) => fill[key] ?? `@${key}@`)
    // The journal on the serial console: the test's only window into the guest. The agent too
    // (disabled in the image): its unit's sandbox then runs under a real systemd.
    .replace('panic=-1 quiet', 'panic=-1 systemd.journald.forward_to_console=1 systemd.wants=fedvm-agent.service')
  t.notMatch(xml, /@[A-Z]+@/, 'every placeholder of the template is filled')
  await writeFile(join(host.dir, `${name}.xml`), xml)
  await host.virsh('define', join(host.dir, `${name}.xml`))
  await host.virsh('start', name)
  const consoleText = async (): Promise<string> => `console (last 3000 characters):\n${(await readFile(consoleLog, 'utf8').catch(() => '')).slice(-3000)}`
  await waitFor('the channel socket', async () => await stat(channel).then(() => true, () => undefined), 30_000, 500, consoleText)

  const dir = await mkdtemp(join(tmpdir(), 'fedvm-vm-image-agent-'))
  t.teardown(async () => await rm(dir, { recursive: true, force: true }))
  const publicKey = await writeSealKeyPair(join(dir, 'keys'))
  await writeFile(join(dir, 'sample.json'), JSON.stringify({ id: 'sample', primarySite: { id: 'site-a', publicKey }, monitoring: [] }))
  await writeFile(join(dir, 'agent.json'), JSON.stringify({
    listen: '127.0.0.1:0', stateDir: join(dir, 'state'), vms: [{ name: 'sample', descriptor: 'sample.json', feed: `unix:${channel}` }], consumers: [],
  }))
  const agentLog: string[] = []
  const agent = await Agent.start(join(dir, 'agent.json'), (line) => { agentLog.push(line) })
  t.teardown(async () => await agent.stop())
  const context = async (): Promise<string> => `agent log:\n${agentLog.slice(-20).join('\n')}\n${await consoleText()}`

  const users = { domain: 'sample', kpi: 'users', column: 'current_users' }
  const first = await waitFor('the sample KPI on /metrics', async () => {
    const s = await scrape(agent.metricsUrl)
    const sample = s.value('fedvm_kpi', { ...users, column: 'sample' })
    return sample !== undefined && s.value('fedvm_kpi', users) !== undefined ? { sample, writes: s.value('fedvm_kpi_writes_total', { domain: 'sample', kpi: 'users' }) ?? 0 } : undefined
  }, 240_000, 500, context)
  log(`first KPI on /metrics after ${elapsed()}`)
  const guestConsole = await readFile(consoleLog, 'utf8')
  t.match(guestConsole, /fedvm-vm: root mounted, starting systemd/, 'the initramfs handed over to the image\'s systemd')
  t.match(guestConsole, /guestfs: mounted \/kpi/, 'udev started fedvm-guestfs, which mounted /kpi')
  const agentUp = await waitFor('the guest\'s fedvm-agent', async () => /fedvm-agent\[\d+\]: agent: serving \/metrics on http:\/\/127\.0\.0\.1:9464\/metrics/.test(await readFile(consoleLog, 'utf8')) || undefined, 60_000, 500, context)
  t.ok(agentUp, 'fedvm-agent.service runs under systemd with its sandbox (as fedvm-agent, no capabilities, ProtectSystem=strict)')
  const failed = (await readFile(consoleLog, 'utf8')).split('\n').filter((line) => /Failed to start|FAILED|status=\d+\/|code=exited/.test(line))
  t.same(failed, [], 'no unit failed during boot')

  // The application writes every second: a few seconds later there are more rows.
  const later = await waitFor('more KPI rows', async () => {
    const s = await scrape(agent.metricsUrl)
    const writes = s.value('fedvm_kpi_writes_total', { domain: 'sample', kpi: 'users' }) ?? 0
    const sample = s.value('fedvm_kpi', { ...users, column: 'sample' }) ?? 0
    return writes >= first.writes + 3 && sample >= first.sample + 3 ? { writes, sample } : undefined
  }, 30_000, 500, context)
  t.ok(later.sample >= first.sample + 3, `the sample counter moved from ${first.sample} to ${later.sample}`)
  const s = await scrape(agent.metricsUrl)
  t.equal(s.value('fedvm_feed_up', { domain: 'sample' }), 1, 'fedvm_feed_up{domain="sample"} 1')
  const current = s.value('fedvm_kpi', users) ?? -1
  t.ok(current >= 10 && current < 60, `current_users is the sample app's value (${current})`)
  log(`done after ${elapsed()}`)
})
