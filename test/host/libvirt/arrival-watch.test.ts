import t from 'tap'
import { execFile, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { ArrivalVerdict, parseArrivalEvent, watchLiveArrival, type ArrivalEvent } from '../../../host/libvirt/arrival-watch'
import { distFile } from '../../support/dist-paths'
import { ensureGuestImage } from '../../support/vm/guest-image'
import { chooseDomainType } from '../../support/vm/kvm-probe'
import { LibvirtHost } from '../../support/vm/libvirt-host'
import { domainXml, waitGuestReady } from '../../support/vm/test-domain'

// A guest that resets or stops right after it arrived live is reported as such by the Destination, from
// libvirt's lifecycle events: the lines as libvirt 9's `virsh event --timestamp` prints them, then a real
// libvirtd whose suspended domain stands in for an incoming one (resume = Finish).

const run = promisify(execFile)

t.test('virsh event lines', async (t) => {
  const at = Date.parse('2026-12-05T00:30:01.250Z')
  t.same(parseArrivalEvent("2026-12-05 00:30:01.250+0000: event 'lifecycle' for domain 'vm1': Resumed Migrated"), { kind: 'resumed', at, text: 'Resumed Migrated' })
  t.same(parseArrivalEvent("2026-12-05 00:30:01.250+0000: event 'reboot' for domain 'vm1'"), { kind: 'reset', at, text: 'reboot' })
  t.same(parseArrivalEvent("event 'lifecycle' for domain 'vm1': Stopped Shutdown"), { kind: 'stopped', at: undefined, text: 'Stopped Shutdown' })
  t.equal(parseArrivalEvent("event 'lifecycle' for domain 'vm1': Suspended Paused")?.kind, 'other')
  t.equal(parseArrivalEvent('events received: 3'), undefined)
})

t.test('the verdict: a stop before the resume is an abort, after it within the window the arrival\'s', async (t) => {
  const ev = (kind: ArrivalEvent['kind'], at: number, text: string = kind): ArrivalEvent => ({ kind, at, text })
  const aborted = new ArrivalVerdict('vm1', 5000)
  aborted.feed(ev('stopped', 1000, 'Stopped Destroyed'), 0)
  t.equal(aborted.outcome, 'gone')
  t.equal(aborted.report, undefined, 'an abort is not reported')

  const reset = new ArrivalVerdict('vm1', 5000)
  reset.feed(ev('resumed', 1000), 0)
  reset.feed(ev('other', 1100, 'Suspended Paused'), 0)
  t.equal(reset.outcome, undefined)
  reset.feed(ev('stopped', 1180, 'Stopped Shutdown'), 0)
  t.equal(reset.outcome, 'stopped')
  t.match(reset.report, /vm1 arrived live and stopped 180 ms after it resumed here \(libvirt: Stopped Shutdown\)/)

  const destroyed = new ArrivalVerdict('vm1', 5000)
  destroyed.feed(ev('resumed', 1000), 0)
  destroyed.feed(ev('stopped', 1500, 'Stopped Destroyed'), 0)
  t.equal(destroyed.outcome, 'host-stopped', 'an abort destroying the arrived domain is this host\'s doing')
  t.equal(destroyed.report, undefined)

  const rebooted = new ArrivalVerdict('vm1', 5000)
  rebooted.feed(ev('resumed', 1000), 0)
  rebooted.feed(ev('reset', 1200, 'reboot'), 0)
  t.equal(rebooted.outcome, 'reset')
  t.match(rebooted.report, /vm1 arrived live and was reset 200 ms after it resumed here \(libvirt: reboot event\)/)

  const late = new ArrivalVerdict('vm1', 5000)
  late.feed(ev('resumed', 1000), 0)
  late.feed(ev('reset', 7000), 0)
  t.equal(late.outcome, 'stayed', 'a reset after the window is not the arrival\'s')
  t.equal(late.report, undefined)
})

t.test('a real libvirtd: a guest that panics after the resume, a reset by the host, a domain dropped before the resume, a watcher SIGKILLed, one that runs on', async (t) => {
  const image = await ensureGuestImage()
  const type = await chooseDomainType(image)
  const tag = randomBytes(3).toString('hex')
  const [host] = await LibvirtHost.startAll(t, [{ tag }])
  // The watch holds no process open (a site that stops just stops watching): this keeps the test's alive.
  const alive = setInterval(() => {}, 1000)
  t.teardown(() => clearInterval(alive))
  const name = `fedvm-${tag}-arr`
  // The test domain (panic=-1, on_reboot=destroy, as the ownership test's) whose kernel panics on an NMI: the
  // guest's own panic and reset, as after the arrivals whose memory came corrupted.
  const disk = join(host.dir, `${name}.img`)
  await writeFile(disk, Buffer.alloc(8 * 1024 * 1024))
  const consoleLog = join(host.dir, `${name}.console.log`)
  const xmlFile = join(host.dir, `${name}.xml`)
  await writeFile(xmlFile, domainXml({ name, type, image, memoryMiB: 96, disk, consoleLog }).replace('panic=-1', 'panic=-1 unknown_nmi_panic=1'))
  await host.virsh('define', xmlFile)
  await host.virsh('start', name)
  await waitGuestReady({ name, uuid: '', disk, consoleLog }, 120_000)
  await host.virsh('suspend', name)

  /** A watch that is known to listen: it has seen the event of a title change made after it started. */
  // A watch whose virsh ended before it heard anything (seen once in a loaded fresh-clone run: its connection to
  // libvirtd failed) is started again, at most twice more: what is tested is the verdict on real events.
  const listening = async (windowMs: number, attempt = 1): Promise<{ lines: string[], done: Promise<string>, stop: () => void }> => {
    const lines: string[] = []
    let seen!: () => void
    const heard = new Promise<void>((resolve) => { seen = resolve })
    const watch = watchLiveArrival({ uri: host.uri, domain: name, log: (line) => lines.push(line), windowMs, onEvent: (e) => { if (e.kind === 'other') seen() } })
    t.teardown(watch.stop)
    let ended = false
    void watch.done.then(() => { ended = true })
    for (let i = 0; ; i++) {
      await host.virsh('desc', name, '--live', '--title', `probe ${i}`)
      const got = await Promise.race([heard.then(() => true), new Promise((resolve) => setTimeout(resolve, 500, false))])
      if (got === true) break
      if (ended && attempt < 3) {
        t.comment(`the watch's virsh ended before it heard the title change; watching again (attempt ${attempt + 1})`)
        return await listening(windowMs, attempt + 1)
      }
      if (i > 40) throw new Error(`virsh event never reported the title change (its virsh ${ended ? 'ended' : 'still runs'})`)
    }
    return { lines, done: watch.done, stop: watch.stop }
  }
  const shutOff = async (): Promise<void> => {
    // libvirt reports the shutdown a moment before the domain is shut off.
    for (let i = 0; (await host.virsh('domstate', name)).trim() !== 'shut off'; i++) {
      if (i > 100) throw new Error(`${name} did not shut off within 20 s`)
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }

  const panicWatch = await listening(10_000)
  await host.virsh('resume', name)
  await host.virsh('inject-nmi', name)
  t.equal(await panicWatch.done, 'stopped')
  t.match(panicWatch.lines.join('\n'), new RegExp(`${name} arrived live and stopped \\d+ ms after it resumed here \\(libvirt: Shutdown Finished after guest request\\)`))
  await shutOff()

  await host.virsh('start', name, '--paused')
  const hostResetWatch = await listening(10_000)
  await host.virsh('resume', name)
  await host.virsh('reset', name)
  t.equal(await hostResetWatch.done, 'host-stopped', 'a reset the host asked for is not the arrival\'s')
  t.same(hostResetWatch.lines, [])
  await shutOff()

  await host.virsh('start', name, '--paused')
  const goneWatch = await listening(10_000)
  await host.virsh('destroy', name)
  t.equal(await goneWatch.done, 'gone')
  t.same(goneWatch.lines, [], 'an incoming domain dropped before it ran is not reported')

  // A site daemon SIGKILLed mid-migration leaves no watcher: its virsh gets the parent-death signal.
  await host.virsh('start', name, '--paused')
  const watcher = spawn(process.execPath, ['-e', `require(${JSON.stringify(distFile('host', 'libvirt', 'arrival-watch.js'))}).watchLiveArrival({ uri: ${JSON.stringify(host.uri)}, domain: ${JSON.stringify(name)}, log: console.log }); setInterval(() => {}, 1000)`], { stdio: 'ignore' })
  t.teardown(() => { if (watcher.exitCode === null && watcher.signalCode === null) watcher.kill('SIGKILL') })
  const virshPid = async (): Promise<number | undefined> => {
    const { stdout } = await run('pgrep', ['-f', `event --domain ${name} `]).catch(() => ({ stdout: '' }))
    return stdout.split('\n').map(Number).find((pid) => pid > 0)
  }
  let pid: number | undefined
  for (let i = 0; pid === undefined; i++) {
    if (i > 50) throw new Error('the watcher process started no virsh event within 10 s')
    await new Promise((resolve) => setTimeout(resolve, 200))
    pid = await virshPid()
  }
  watcher.kill('SIGKILL')
  let gone = false
  for (let i = 0; i < 50 && !gone; i++) {
    await new Promise((resolve) => setTimeout(resolve, 200))
    gone = !existsSync(`/proc/${pid}`)
  }
  t.ok(gone, `virsh event (pid ${pid}) ended with the SIGKILLed process that started it`)
  await host.virsh('destroy', name)

  await host.virsh('start', name, '--paused')
  const quietWatch = await listening(1500)
  await host.virsh('resume', name)
  t.equal(await quietWatch.done, 'stayed', 'the watch ends itself after the window')
  t.same(quietWatch.lines, [])
  t.equal((await host.virsh('domstate', name)).trim(), 'running')
})
