import t from 'tap'
import { fork } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { LiveDestination } from '../../../host/libvirt/live-destination'
import { LIVE_CHANNELS, localSocketPath } from '../../../host/libvirt/live-params'
import { resumeAtSource } from '../../../host/libvirt/live-source'
import { liveStatusesAgree } from '../../../host/libvirt/live-status'
import { ProtocolError } from '../../../protocol/errors'
import { StreamPark, StreamParker } from '../../../protocol/proxy/stream-relay'
import { BOOT_MARKER, bootedGuestOnPair, liveMigration, sourceProxy, waitUntil } from './support/live-pair'

// A live migration's failure semantics are Confirm's: until the Destination's Finish succeeded the
// VM runs at the Source, and it never runs at both. Each case kills one part mid-stream.

t.test('the Destination\'s libvirtd killed mid-stream: the VM runs at the Source only', async (t) => {
  const { a, b, ids, name, domain } = await bootedGuestOnPair(t, 'kill', { memoryMiB: 256, diskMiB: 64 })
  const { source, destination } = await liveMigration(t, a, b, ids, name)

  // Killed as soon as libvirt reports the running job: the streams are then under way.
  let killed = false
  const kill = (): void => {
    if (killed) return
    killed = true
    const pid = Number(readFileSync(join(b.dir, 'run', 'libvirtd.pid'), 'utf8').trim())
    process.kill(pid, 'SIGKILL')
  }
  let performed: Buffer | undefined
  let performError: Error | undefined
  try {
    performed = await source.perform(destination.cookie, { onProgress: kill, progressEveryMs: 100 })
  } catch (err) {
    performError = err as Error
  }
  t.ok(killed, 'the Destination\'s libvirtd was killed while Perform ran')
  t.comment(`Perform ${performError === undefined ? 'completed (the Destination QEMU outlives its libvirtd)' : `failed: ${performError.message}`}`)
  // Finish cannot succeed without the Destination's libvirtd: the Source is told so and keeps the VM.
  const finished = await destination.finish(performed ?? Buffer.alloc(0), performed === undefined).catch(() => undefined)
  t.equal(finished, undefined, 'Finish did not succeed')
  t.notOk(liveStatusesAgree(await destination.status(), source.status(performed ?? Buffer.alloc(0))), 'dstat differs from sstat: the token would not be spent')
  await source.confirm(Buffer.alloc(0), true)
  t.match(await a.virsh('domstate', name), /running/, 'the VM runs at the Source')
  await b.restartLibvirtd()
  const there = await waitUntil(async () => !(await b.virsh('list', '--name')).includes(name), 60_000)
  t.ok(there, 'the restarted Destination libvirtd runs no copy of it')
  t.notOk((await readFile(domain.consoleLog, 'utf8')).split(BOOT_MARKER).length > 2, 'the Source\'s guest never rebooted')
})

t.test('the Source\'s process SIGKILLed mid-Perform: the VM runs at the Source only', async (t) => {
  const { a, b, ids, name, domain } = await bootedGuestOnPair(t, 'srckill', { memoryMiB: 256, diskMiB: 64 })

  const id = randomBytes(8).toString('hex')
  const child = fork(join(__dirname, 'support', 'live-source-child.ts'), [a.uri, name, id], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const messages: Array<Record<string, any>> = []
  const next = async (key: string): Promise<Record<string, any>> => {
    await waitUntil(async () => messages.some((m) => key in m) || child.exitCode !== null || child.signalCode !== null, 120_000)
    const m = messages.find((m) => key in m)
    if (m === undefined) throw new Error(`the Source child ended without ${key}`)
    return m
  }
  child.on('message', (m: Record<string, any>) => messages.push(m))
  const offer = (await next('offer')).offer
  const destination = await LiveDestination.prepare({ uri: b.uri, id, domain: name, dir: join(b.dir, 'vms', name), offer: { ...offer, cookie: Buffer.from(offer.cookie, 'base64') } })
  t.teardown(async () => await destination.close())
  const token = randomBytes(16).toString('hex')
  const park = new StreamPark((presented) => { if (presented !== token) throw new ProtocolError('token-foreign', 'no'); return token })
  const proxy = await sourceProxy(ids.source, park)
  t.teardown(() => { park.close(); proxy.server.close() })
  for (const channel of LIVE_CHANNELS) await park.listen(token, channel, localSocketPath(a.uri, id, channel))
  const parkers = LIVE_CHANNELS.map((channel) => new StreamParker({ url: proxy.url, fingerprint: ids.source.fingerprint, token, channel, clientCert: ids.destination, targetPath: destination.socketPath(channel) }))
  t.teardown(() => { for (const p of parkers) p.close() })

  child.send({ cookie: destination.cookie.toString('base64') })
  await next('progress')
  child.kill('SIGKILL')
  t.pass('the Source\'s process was killed while Perform ran')
  // The Destination never got Perform's cookie: its in-doubt side cancels; the Source's recovery resumes the VM there.
  t.equal(await destination.finish(Buffer.alloc(0), true), undefined, 'the Destination cancels')
  t.ok(await resumeAtSource({ uri: a.uri, domain: name }), 'the VM runs at the Source')
  t.ok(await waitUntil(async () => !(await b.virsh('list', '--name')).includes(name), 60_000), 'and not at the Destination')
  t.equal((await readFile(domain.consoleLog, 'utf8')).split(BOOT_MARKER).length, 2, 'the Source\'s guest never rebooted')
})

