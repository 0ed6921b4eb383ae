import { spawn } from 'node:child_process'
import { join } from 'node:path'
import t from 'tap'
import { TestMount } from '../../support/guestfs-mount'
import { AgentSetup, VM } from '../support/agent-setup'
import { DeliveryReceiver } from '../support/delivery-receiver'
import { waitFor } from '../../support/wait'

// `--feed dev:PATH`: inside a VM, guestfs serves the feed on a virtio-serial port (a
// character device) and the host agent connects to QEMU's unix socket for it. Here socat plays QEMU:
// a pseudo-terminal is the guest's character device and a unix socket the host's end, so the real
// guestfs (dev:) and the real agent (unix:) talk through a device exactly as they would through a VM.

const RAW = { metric: 'kpi:k.v', monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' }

t.test('dev: feed through a character device: rows in order, exactly once, across an agent restart', async (t) => {
  const receiver = await DeliveryReceiver.start(t)
  const setup = await AgentSetup.create(t, { monitoring: [RAW], consumers: [receiver.url], guestfs: false })
  const port = join(setup.dir, 'vport0p1')
  const hostSocket = join(setup.dir, 'host.sock')
  const socat = spawn('socat', [`PTY,link=${port},raw,echo=0`, `UNIX-LISTEN:${hostSocket},fork`], { stdio: 'ignore' })
  t.teardown(() => { socat.kill('SIGTERM') })
  await waitFor('socat to create the port and the socket', async () => {
    const { access } = await import('node:fs/promises')
    return access(port).then(() => access(hostSocket)).then(() => true, () => false)
  }, 10_000)

  const mount = await TestMount.create(t, { extraArgs: ['--feed', `dev:${port}`] })
  await setup.writeConfig({ vms: [{ name: VM, descriptor: `${VM}.json`, feed: `unix:${hostSocket}` }], consumers: [{ type: 'http', url: receiver.url }] })
  const write = async (from: number, to: number) => {
    for (let i = from; i <= to; i++) t.equal((await mount.sh(`printf 'v\\n${i}\\n' | cat > "$KPI"`, { KPI: mount.path('unencrypted', 'k') })).code, 0)
  }
  const values = () => receiver.unique().filter((d) => d.metric === RAW.metric).map((d) => d.samples![0].value)

  await write(1, 10) // before the agent runs: caught up from the database
  const first = await setup.startAgent()
  await write(11, 20) // while it runs: live
  await waitFor('rows 1..20 at the receiver', () => values().length >= 20, 20_000)
  t.same(values(), Array.from({ length: 20 }, (_, i) => i + 1), 'rows 1..20, in commit order, once each')

  first.signal('SIGKILL')
  await first.exited
  await write(21, 30) // while no host is connected: the guest cannot see it and keeps committing
  await setup.startAgent()
  await waitFor('rows 21..30 after the restart', () => values().length >= 30, 20_000)
  t.same(values(), Array.from({ length: 30 }, (_, i) => i + 1), 'after the agent was killed and restarted: 1..30, none lost or repeated')
  t.equal(setup.cursor(), 30n, 'the persisted cursor is the last row')
})
