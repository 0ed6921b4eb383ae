import { spawn } from 'node:child_process'
import { access, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { generateBoxKeyPair } from '../../../protocol/crypto/sealed-box'
import { freePort } from '../../support/free-port'
import { TestMount } from '../../support/guestfs-mount'
import { AgentProcess } from '../support/agent-process'
import { DeliveryReceiver } from '../support/delivery-receiver'
import { waitFor } from '../../support/wait'

// monitoring follows the VM, without libvirt: two host agents with `discover` and no
// `vms`, each watching its own VM directory. The real guestfs serves the feed on a character device
// (`dev:`), and socat plays QEMU: a pseudo-terminal is the guest's virtio-serial port, a unix socket
// in the VM's folder the host end of the `org.fedvm.kpi.0` channel (as domain.xml says). The VM
// "migrates": its folder (with the listening socket in it) leaves host A's VM directory and arrives
// in host B's, domain.xml rewritten to B's path as LibvirtVmHost.confirm does, while the guest keeps
// writing. Agent B has no state: it continues from the rows agent A acknowledged.

const RAW = { metric: 'kpi:k.v', monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' }
const WINDOW = { metric: 'kpi:k.v', monitoringIntervalMs: 0, deliveryIntervalMs: 600_000, format: 'processed', function: 'max' }
const VM = 'vm1'
const ROWS = 60

const domainXml = (channel: string) => `<domain type='qemu'>
  <name>${VM}</name>
  <devices>
    <channel type='unix'>
      <source mode='bind' path='${channel}'/>
      <target type='virtio' name='org.fedvm.kpi.0'/>
    </channel>
  </devices>
</domain>
`

t.test('a VM that moves from host A to host B: B picks it up without config and continues where A stopped, every row at exactly one agent', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'fedvm-move-')) // short: unix socket paths have at most 107 bytes
  t.teardown(() => rm(root, { recursive: true, force: true }))
  const hosts = { a: join(root, 'a'), b: join(root, 'b') }
  const keys = await generateBoxKeyPair()
  const descriptor = JSON.stringify({ id: VM, primarySite: { id: 'site-p', publicKey: Buffer.from(keys.publicKey).toString('base64') }, monitoring: [RAW, WINDOW] })

  // Host A runs the VM: its folder, and "QEMU" listening on the channel socket inside it.
  const vmAtA = join(hosts.a, 'vms', VM)
  await mkdir(vmAtA, { recursive: true })
  await mkdir(join(hosts.b, 'vms'), { recursive: true })
  await writeFile(join(vmAtA, 'descriptor.json'), descriptor)
  await writeFile(join(vmAtA, 'domain.xml'), domainXml(join(vmAtA, 'kpi.sock')))
  const port = join(root, 'vport0p1')
  const socat = spawn('socat', ['-t', '0', `PTY,link=${port},raw,echo=0`, `UNIX-LISTEN:${join(vmAtA, 'kpi.sock')},fork`], { stdio: 'ignore' })
  t.teardown(() => { socat.kill('SIGTERM') })
  await waitFor('socat to create the port and the channel socket', () => access(port).then(() => access(join(vmAtA, 'kpi.sock'))).then(() => true, () => false), 10_000)
  const mount = await TestMount.create(t, { extraArgs: ['--feed', `dev:${port}`] })
  const write = (from: number, to: number, pause = 0) => mount.sh(`for i in $(seq ${from} ${to}); do printf 'v\\n%d\\n' $i > "$KPI" || exit 1; sleep ${pause}; done`, { KPI: mount.path('unencrypted', 'k') })

  // One agent per host, configured with nothing but its VM directory.
  const agents: Record<'a' | 'b', { process: AgentProcess, receiver: DeliveryReceiver, state: string }> = {} as never
  for (const host of ['a', 'b'] as const) {
    const receiver = await DeliveryReceiver.start(t)
    const listen = await freePort()
    const config = { listen: `127.0.0.1:${listen}`, stateDir: 'state', consumers: [{ type: 'http', url: receiver.url }], discover: { vmDir: 'vms', intervalMs: 200 } }
    await writeFile(join(hosts[host], 'agent.json'), JSON.stringify(config))
    agents[host] = { process: await AgentProcess.start(t, join(hosts[host], 'agent.json'), listen), receiver, state: join(hosts[host], 'state', 'agent.db') }
  }
  const rows = (host: 'a' | 'b') => agents[host].receiver.unique().filter((d) => d.format === 'raw').map((d) => d.samples![0].value)

  t.equal((await write(1, 10)).code, 0)
  await waitFor('agent A to discover the VM and deliver rows 1..10', () => rows('a').length >= 10, 20_000)
  t.match(agents.a.process.log(), new RegExp(`discovery: VM ${VM} is here \\(domain ${VM}, feed unix:${vmAtA}/kpi\\.sock\\)`), 'A found the VM in its VM directory')

  // The guest keeps writing (a row every ~30 ms) while the VM moves.
  const writing = write(11, ROWS, 0.03)
  await new Promise((resolve) => setTimeout(resolve, 400))
  const inTransit = join(root, 'in-transit')
  await rename(vmAtA, inTransit) // A prepared it for leaving: it is no VM of A's any more
  await agents.a.process.waitForLog(new RegExp(`discovery: VM ${VM} left`), 1, 10_000)
  await waitFor('A to deliver its open window when the VM left', () => agents.a.receiver.unique().some((d) => d.format === 'processed'), 10_000)
  await new Promise((resolve) => setTimeout(resolve, 700)) // socat's connection to A winds down (its -t 0.5 s)
  const vmAtB = join(hosts.b, 'vms', VM)
  await writeFile(join(inTransit, 'domain.xml'), domainXml(join(vmAtB, 'kpi.sock'))) // paths rewritten, as confirm does
  await rename(inTransit, vmAtB) // the listening socket moves with the folder: B's "QEMU" end
  t.equal((await writing).code, 0, 'the guest wrote every row')

  await waitFor(`rows 1..${ROWS} across both agents`, () => rows('a').length + rows('b').length >= ROWS, 30_000)
  await new Promise((resolve) => setTimeout(resolve, 500)) // a repeat would arrive now
  const a = rows('a')
  const b = rows('b')
  t.ok(a.length >= 10 && b.length > 0, `A delivered ${a.length} rows, B ${b.length}`)
  t.strictSame([...a, ...b], Array.from({ length: ROWS }, (_, i) => i + 1), 'A delivered 1..k and B k+1..N: every row once, in order, none at both')
  t.equal(agents.a.receiver.all().filter((d) => d.format === 'raw').length, a.length, 'A sent no row twice')
  t.equal(agents.b.receiver.all().filter((d) => d.format === 'raw').length, b.length, 'B sent no row twice')
  const epochOf = (id: string) => /:([0-9a-f]{12})\.\d+$/.exec(id)?.[1]
  t.equal(epochOf(agents.b.receiver.unique()[0].id), epochOf(agents.a.receiver.unique()[0].id), 'both agents give the rows ids of the same guest database')

  const window = agents.a.receiver.unique().find((d) => d.format === 'processed')!
  t.equal(window.value, a.at(-1), 'A\'s window was delivered when the VM left, up to its last row')
  t.match(agents.b.process.log(), new RegExp(`discovery: VM ${VM} is here \\(domain ${VM}, feed unix:${vmAtB}/kpi\\.sock\\)`), 'B found the VM in its VM directory')
  t.notMatch(agents.b.process.log(), /gap in the feed|closing after a bad frame/, 'B took the hand-over without a broken connection')
  const cursor = (state: string) => {
    const db = new Database(state, { readonly: true, fileMustExist: true })
    try {
      return db.prepare('SELECT seq FROM feed_cursors WHERE vm = ?').pluck().get(VM)
    } finally {
      db.close()
    }
  }
  t.equal(cursor(agents.b.state), String(ROWS), 'B\'s cursor is the last row')
  t.equal(cursor(agents.a.state), String(a.at(-1)), 'A\'s cursor stayed where it stopped')
  for (const host of ['a', 'b'] as const) t.notOk('vms' in JSON.parse(await readFile(join(hosts[host], 'agent.json'), 'utf8')), `agent ${host.toUpperCase()} has no vms entry`)
})
