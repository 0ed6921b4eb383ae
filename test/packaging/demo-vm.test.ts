import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FEDVM_JS } from '../support/dist-paths'
import { cacheRoot } from '../support/vm/guest-image'

// `fedvm demo --vm` from dist: the same story with a real VM (packaging/vm-image, booted under TCG
// by two private libvirtds), its key lines, and nothing left behind: no process, namespace or folder.
// It needs the VM image the e2e tests build (test/e2e/vm-migration.test.ts): 3-6 min the first time.

t.setTimeout(20 * 60_000)

const hasImage = async (): Promise<boolean> => (await readdir(cacheRoot()).catch(() => [] as string[])).some((n) => /^vm-image-[0-9a-f]{12}$/.test(n))
const NO_IMAGE = `no VM image in ${cacheRoot()}: run test/e2e/vm-migration.test.ts first`

/** Processes whose command line names the work folder: sites, agents, QEMU (its disk is in there). */
async function processesNaming (root: string): Promise<number[]> {
  const found: number[] = []
  for (const pid of (await readdir('/proc')).filter((e) => /^\d+$/.test(e) && Number(e) !== process.pid)) {
    if ((await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).includes(root)) found.push(Number(pid))
  }
  return found
}

/** Whether a process runs; an exited one its parent (init, for a daemon) has not reaped yet does not. */
async function running (pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
  return stat !== '' && !/^\d+ \(.*\) Z/.test(stat)
}

/** The PIDs of the libvirt hosts' daemons, from their pid files in /tmp/fedvm-libvirt-TAG-* (TAG: the namespace's). */
async function libvirtDaemons (namespaces: Array<string | undefined>): Promise<number[]> {
  const pids: number[] = []
  for (const ns of namespaces) {
    const prefix = `${String(ns).replace(/^fedvm-/, 'fedvm-libvirt-')}-`
    for (const dir of (await readdir(tmpdir())).filter((n) => n.startsWith(prefix))) {
      for (const daemon of ['libvirtd', 'virtlogd']) {
        const pid = Number((await readFile(join(tmpdir(), dir, 'run', `${daemon}.pid`), 'utf8').catch(() => '')).trim())
        if (pid > 1) pids.push(pid)
      }
    }
  }
  return pids
}

t.test('fedvm demo --vm', async (t) => {
  if (!await hasImage()) {
    t.plan(0, NO_IMAGE)
    return
  }
  const started = Date.now()
  const child = spawn(process.execPath, [FEDVM_JS(), 'demo', '--vm'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d })
  child.stderr.setEncoding('utf8').on('data', (d: string) => { out += d })
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGINT') // the demo stops what it started
      await exited
    }
  })
  const code = await exited
  t.comment(out)
  t.equal(code, 0, `exit status 0 after ${((Date.now() - started) / 1000).toFixed(0)} s`)
  const root = /work folder (\S+) /.exec(out)?.[1] ?? '(none printed)'
  for (const line of [
    /libvirtd running for site-c's hosts c1 and c2/,
    /placed \(fedvm site place at site-a\): kpi-vm went to partner site-b, which delegated it to site-c's host c[12] /,
    /monitoring: c[12]'s agent found kpi-vm /,
    /^ +\S+Z +kpi:users\.sample +raw +\d+$/m,
    /sealed KPI kpi:users\.load: relayed sealed \(sealed: true\), opened at A with A's seal\.key: \d+(\.\d+)?$/m,
    /A's rule "counter-high" \(raw\(kpi:users\.sample\) > 12 for 3s\) fired/,
    /Forced migration done by A's Controller: kpi-vm went to partner site-b again, now on site-c's host c[12] \(moved from c[12], live, \d+ ms, paused (\d+ ms|only) to switch over\)/,
    /monitoring follows: c[12]'s agent took up the feed .*: each once, none missing/,
    /by hand \(fedvm migrate at site-a\): kpi-vm went to partner site-b again, now on site-c's host c[12] \(\d+ ms\)/,
    /where is kpi-vm\? site-a: "partner site-b" · site-b: "partner site-c" · site-c: "host c[12]"/,
    /cleaned up: .*libvirt host c2 stopped .*libvirt host c1 stopped .*removed/,
  ]) t.match(out, line)
  t.notOk(existsSync(root), `${root} is removed`)
  const netns = await readdir('/run/netns').catch(() => [] as string[])
  const named = /network namespaces (\S+) and (\S+)\)/.exec(out)
  t.ok(named !== null, 'the demo names the namespaces it made')
  t.same(netns.filter((n) => n === named?.[1] || n === named?.[2]), [], 'the libvirt hosts\' namespaces are gone')
  t.same(await processesNaming(root), [], 'no process names the work folder (sites, agents, QEMU)')
})

t.test('fedvm demo --vm, Ctrl-C once the VM runs: no process, namespace or folder is left', async (t) => {
  if (!await hasImage()) {
    t.plan(0, NO_IMAGE)
    return
  }
  const child = spawn(process.execPath, [FEDVM_JS(), 'demo', '--vm'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d })
  child.stderr.setEncoding('utf8').on('data', (d: string) => { out += d })
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exited
    }
  })
  const until = Date.now() + 180_000
  while (!/placed \(fedvm site place/.test(out) && child.exitCode === null && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 200))
  t.match(out, /placed \(fedvm site place/, 'the VM was placed and boots')
  const root = /work folder (\S+) /.exec(out)?.[1] ?? '(none printed)'
  const named = /network namespaces (\S+) and (\S+)\)/.exec(out)
  t.ok((await processesNaming(root)).length >= 6, 'sites, agents and QEMU run')
  const daemons = await libvirtDaemons([named?.[1], named?.[2]])
  t.equal(daemons.length, 4, `libvirtd and virtlogd of both hosts run (${daemons.join(', ')})`)
  child.kill('SIGINT')
  t.equal(await exited, 130, 'exit status 130')
  t.comment(out)
  t.match(out, /SIGINT: stopping the demo\n(.|\n)*cleaned up: .*libvirt host c2 stopped .*libvirt host c1 stopped .*removed/)
  t.notOk(existsSync(root), `${root} is removed`)
  const netns = await readdir('/run/netns').catch(() => [] as string[])
  t.same(netns.filter((n) => n === named?.[1] || n === named?.[2]), [], 'the libvirt hosts\' namespaces are gone')
  for (const pid of daemons) t.notOk(await running(pid), `libvirtd/virtlogd ${pid} is gone`)
  t.same(await processesNaming(root), [], 'no process names the work folder')
})
