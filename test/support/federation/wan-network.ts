/**
 * A wide-area network between test sites: one network namespace per site, each with an `eth0` in
 * 10.213.31.0/24 (a private range that exists only inside these namespaces; nothing is routed out
 * of them), joined by a link that delays, drops and partitions frames as `tc netem` would.
 *
 * The link is wan-link.py, a user-space switch holding each site's eth0 (a TAP device): the kernels
 * of these machines have no sch_netem (`tc qdisc add … netem` answers "Specified qdisc kind is
 * unknown"), and the TAP path needs nothing but /dev/net/tun. `setShape()` sets RTT, loss and rate,
 * `partition(site)` makes every frame to and from one site vanish (no RST, no ICMP, as on the
 * internet) until `heal(site)`. `destroy()` stops the link by PID and deletes the namespaces; register
 * it with t.teardown. If the test process dies, the link sees its stdin close and exits.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { REPO_ROOT } from '../dist-paths'

const run = promisify(execFile)

const PREFIX = '10.213.31'
/** From the source tree (also when this file runs compiled under dist/). */
const LINK = join(REPO_ROOT, 'test', 'support', 'federation', 'wan-link.py')

export interface WanSite {
  /** The namespace's name (`/run/netns/NAME`). */
  name: string
  /** The site's address on the WAN. */
  address: string
}

export interface LinkShape {
  /** Round-trip time between any two sites, in ms. */
  rttMs: number
  /** Frames lost in each direction, in percent. */
  lossPercent: number
  /** Each site's port sends at most this many Mbit/s (a WAN link's bandwidth); unlimited when absent. */
  mbitPerSecond?: number
}

export class WanNetwork {
  private readonly created: string[] = []
  private readonly sites: WanSite[] = []
  private link?: ChildProcess
  private exited: Promise<void> = Promise.resolve()
  private output = ''
  private answered = 0

  private constructor (readonly tag: string) {}

  /** One namespace per site name (`fwan-TAG-NAME`), addresses .1, .2, … in order, joined by the link. */
  static async create (tag: string, siteNames: string[]): Promise<{ network: WanNetwork, sites: WanSite[] }> {
    const network = new WanNetwork(tag)
    try {
      for (const [i, siteName] of siteNames.entries()) {
        const name = `fwan-${tag}-${siteName}`
        await run('ip', ['netns', 'add', name])
        network.created.push(name)
        await ip(name, 'link', 'set', 'lo', 'up')
        network.sites.push({ name, address: `${PREFIX}.${i + 1}` })
      }
      await network.startLink()
      for (const site of network.sites) {
        await ip(site.name, 'addr', 'add', `${site.address}/24`, 'dev', 'eth0')
        await ip(site.name, 'link', 'set', 'eth0', 'up')
      }
      return { network, sites: [...network.sites] }
    } catch (err) {
      await network.destroy().catch(() => {})
      throw err
    }
  }

  async setShape (shape: LinkShape): Promise<void> {
    await this.command(`shape ${shape.rttMs} ${shape.lossPercent} ${shape.mbitPerSecond ?? 0}`)
  }

  /** Nothing reaches `site` and nothing leaves it. */
  async partition (site: WanSite): Promise<void> {
    await this.command(`cut ${this.indexOf(site)}`)
  }

  /** Back to the shaped link. */
  async heal (site: WanSite): Promise<void> {
    await this.command(`heal ${this.indexOf(site)}`)
  }

  /** What `site` sends from now on vanishes; what it is sent still arrives: a one-way partition. */
  async mute (site: WanSite): Promise<void> {
    await this.command(`mute ${this.indexOf(site)}`)
  }

  async unmute (site: WanSite): Promise<void> {
    await this.command(`unmute ${this.indexOf(site)}`)
  }

  async destroy (): Promise<void> {
    if (this.link !== undefined && this.link.exitCode === null && this.link.signalCode === null) this.link.kill('SIGTERM')
    await this.exited
    const errors: unknown[] = []
    for (const name of this.created.splice(0).reverse()) {
      await run('ip', ['netns', 'del', name]).catch((err) => errors.push(err))
    }
    if (errors.length > 0) throw new AggregateError(errors, `deleting the namespaces of ${this.tag}`)
  }

  private async startLink (): Promise<void> {
    const link = spawn('/usr/bin/python3', [LINK, ...this.sites.map((s) => s.name)], { stdio: ['pipe', 'pipe', 'pipe'] })
    this.link = link
    this.exited = new Promise((resolve) => link.once('close', () => resolve()))
    link.stdout!.setEncoding('utf8').on('data', (d: string) => { this.output += d })
    link.stderr!.setEncoding('utf8').on('data', (d: string) => { this.output += d })
    await this.answer('ok ready')
  }

  private indexOf (site: WanSite): number {
    const i = this.sites.findIndex((s) => s.name === site.name)
    if (i < 0) throw new Error(`${site.name} is not a site of ${this.tag}`)
    return i
  }

  /** Sends one command line and waits for its `ok`. */
  private async command (line: string): Promise<void> {
    this.link!.stdin!.write(`${line}\n`)
    await this.answer(`ok ${line}`)
  }

  /** Waits for the next answer line, which must be `expected`. */
  private async answer (expected: string): Promise<void> {
    const until = Date.now() + 10_000
    for (;;) {
      const lines = this.output.split('\n')
      if (lines.length - 1 > this.answered) {
        const line = lines[this.answered++]
        if (line !== expected) throw new Error(`wan-link answered ${JSON.stringify(line)} to ${JSON.stringify(expected)}: ${this.output.slice(-2000)}`)
        return
      }
      if (this.link!.exitCode !== null || this.link!.signalCode !== null) throw new Error(`wan-link exited: ${this.output.slice(-2000)}`)
      if (Date.now() > until) throw new Error(`wan-link did not answer ${JSON.stringify(expected)} within 10 s: ${this.output.slice(-2000)}`)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }
}

async function ip (netns: string, ...args: string[]): Promise<void> {
  await run('ip', ['-n', netns, ...args])
}
