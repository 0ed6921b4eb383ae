import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { FEDVM_JS } from '../support/dist-paths'
import type { Teardownable } from '../support/teardownable'

// `fedvm demo` from dist, as `npm run demo` runs it after set-up: the whole story on directory hosts
// (its key lines checked), then a second run interrupted with SIGINT in the middle, which must leave
// no process, mount or temporary folder behind.

t.setTimeout(5 * 60_000)

interface Demo { child: ChildProcess, output: () => string, exited: Promise<number | null>, root: () => Promise<string> }

function startDemo (t: Teardownable): Demo {
  const child = spawn(process.execPath, [FEDVM_JS(), 'demo'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let text = ''
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { text += d })
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { text += d })
  const exited = new Promise<number | null>((resolve) => child.once('close', (code, signal) => resolve(code ?? (signal === null ? null : 128))))
  const root = async (): Promise<string> => (await lineMatching(() => text, /work folder (\S+) /, 30_000))[1]
  t.teardown(async () => {
    // A failed test may leave the demo running: SIGINT makes it clean up; what it started is found by its work folder.
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGINT')
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
      await exited
      clearTimeout(timer)
    }
    const folder = /work folder (\S+) /.exec(text)?.[1]
    if (folder !== undefined) for (const pid of await processesNaming(folder)) process.kill(pid, 'SIGKILL')
  })
  return { child, output: () => text, exited, root }
}

async function lineMatching (text: () => string, pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const m = pattern.exec(text())
    if (m !== null) return m
    if (Date.now() > until) throw new Error(`no line matching ${String(pattern)} within ${timeoutMs / 1000} s:\n${text()}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** PIDs of processes whose command line names `folder` (every process the demo starts does). */
async function processesNaming (folder: string): Promise<number[]> {
  const pids: number[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')
    if (cmdline.includes(folder)) pids.push(Number(entry))
  }
  return pids
}

async function mountsUnder (folder: string): Promise<string[]> {
  return (await readFile('/proc/mounts', 'utf8')).split('\n').filter((l) => l.split(' ')[1]?.startsWith(folder))
}

async function leftBehind (t: { same: (a: unknown, b: unknown, m: string) => void, notOk: (v: unknown, m: string) => void }, root: string): Promise<void> {
  t.same(await processesNaming(root), [], 'no process the demo started is left')
  t.same(await mountsUnder(root), [], 'no mount is left')
  t.notOk(existsSync(root), `${root} is removed`)
}

t.test('the demo tells the whole story and cleans up', async (t) => {
  const started = Date.now()
  const demo = startDemo(t)
  const root = await demo.root()
  const code = await demo.exited
  const out = demo.output()
  t.equal(code, 0, `exit status 0 after ${((Date.now() - started) / 1000).toFixed(1)} s`)
  t.comment(out)
  const lines = [
    /keys made \(fedvm keygen\): site-a .*, site-b .*, site-c /,
    /sites running \(fedvm site run\): site-a https:\/\/127\.0\.0\.1:\d+ .* site-b .* site-c /,
    /guestfs mounted on \S+\/guest\/kpi/,
    /host agents \(fedvm agent run\) on site-c's hosts c1 and c2/,
    /placed \(fedvm site place at site-a\): web-1 went to partner site-b, which delegated it to site-c's host (c1|c2) /,
    /monitoring: c[12]'s agent found web-1 .* A stored \d+ deliveries/,
    /A's view \(fedvm monitor query .*--output table\)/,
    /^ +TIME +METRIC +FUNCTION +VALUE +SEALED$/m,
    /^ +\S+Z +kpi:revenue +raw +4711\.5 +yes$/m,
    /^ +\S+Z +kpi:users\.current_users +raw +\d+$/m,
    /sealed KPI kpi:revenue: relayed sealed \(sealed: true\), opened at A with A's seal\.key: 4711\.5; files of B, C and C's hosts holding "4711\.50": none/,
    /a traffic surge/,
    /A's rule "too-busy" \(raw\(kpi:users\.current_users\) > 1000 for 3s\) fired: value 1\d{3} held 3\.\d+ s of data time → Forced migration/,
    /Forced migration done by A's Controller: web-1 went to partner site-b again, now on site-c's host (c1|c2) \(moved from (c1|c2), \d+ ms, digests agree: true\)/,
    /monitoring follows: c[12]'s agent took up the feed where c[12]'s stopped \([1-9]\d* rows read from the guest\); A holds rows 1\.\.\d+ of the guest's KPI database: each once, none missing/,
    /by hand \(fedvm migrate at site-a\): web-1 went to partner site-b again, now on site-c's host c[12] \(\d+ ms\)/,
    /where is web-1\? site-a: "partner site-b" · site-b: "partner site-c" · site-c: "host c[12]"/,
    /cleaned up: the \d+ processes it started are stopped \(by PID\), (.*, )?guestfs unmounted, \S+ removed/,
  ]
  for (const line of lines) t.match(out, line)
  // Every part of the federation ends on its stop signal: a daemon that has to be killed would leave a systemd unit waiting.
  t.notMatch(out, /did not exit within 10 s of SIG\w+ and was killed/, 'every process exits on its stop signal')
  const placedOn = /delegated it to site-c's host (c\d)/.exec(out)?.[1]
  const movedTo = /now on site-c's host (c\d) \(moved from (c\d)/.exec(out)
  t.ok(placedOn !== undefined && movedTo !== null && movedTo[1] !== placedOn && movedTo[2] === placedOn, `the VM moved from ${String(placedOn)} to ${String(movedTo?.[1])}`)
  const byHand = /by hand .* now on site-c's host (c\d)/.exec(out)?.[1]
  t.equal(byHand, placedOn, 'the migration by hand takes it back to the host that is free again')
  t.match(out, new RegExp(`site-c: "host ${String(byHand)}"`), 'C places it where the last migration put it')
  const steps = out.split('\n').filter((l) => /^\[ *\d+\.\d s\] /.test(l))
  t.ok(steps.length >= 14 && steps.every((l) => l.length < 400), `${steps.length} step lines, one line each`)
  await leftBehind(t, root)
})

t.test('Ctrl-C in the middle: nothing is left behind', async (t) => {
  const demo = startDemo(t)
  const root = await demo.root()
  await lineMatching(demo.output, /monitoring: c[12]'s agent found web-1/, 120_000)
  const running = await processesNaming(root)
  t.ok(running.length >= 7, `three sites, guestfs, the app and two agents run (${running.length} processes)`)
  t.equal((await mountsUnder(root)).length, 1, 'guestfs is mounted')
  demo.child.kill('SIGINT')
  t.equal(await demo.exited, 130, 'exit status 130')
  t.match(demo.output(), /SIGINT: stopping the demo\n(.|\n)*cleaned up: the \d+ processes it started are stopped \(by PID\), (.*, )?guestfs unmounted/)
  await leftBehind(t, root)
})
