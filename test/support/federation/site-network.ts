/**
 * Network namespaces for test sites, one per site, all joined by veth pairs to one bridge in a
 * namespace of their own (the "internet" between sites): each site gets an address in 10.213.7.0/24,
 * a private range that exists only inside these namespaces. Nothing is routed out of them.
 *
 * `destroy()` deletes the namespaces (their veth ends go with them). Register it with t.teardown.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface SiteNetns {
  /** The namespace's name (`/run/netns/NAME`). */
  name: string
  /** The site's address on the link between sites. */
  address: string
}

const PREFIX = '10.213.7'

export class SiteNetwork {
  private readonly created: string[] = []

  private constructor (readonly tag: string) {}

  /** One namespace per site name (`fvm-TAG-NAME`), addresses .1, .2, … in order. */
  static async create (tag: string, siteNames: string[]): Promise<{ network: SiteNetwork, sites: SiteNetns[] }> {
    const network = new SiteNetwork(tag)
    try {
      const link = await network.add(`fvm-${tag}-link`)
      await ip(link, 'link', 'add', 'br0', 'type', 'bridge')
      await ip(link, 'link', 'set', 'br0', 'up')
      const sites: SiteNetns[] = []
      for (const [i, siteName] of siteNames.entries()) {
        const name = await network.add(`fvm-${tag}-${siteName}`)
        const address = `${PREFIX}.${i + 1}`
        // The veth is made inside the site's namespace and its peer moved to the link namespace.
        await ip(name, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `p${i}`, 'netns', link)
        await ip(name, 'addr', 'add', `${address}/24`, 'dev', 'eth0')
        await ip(name, 'link', 'set', 'eth0', 'up')
        await ip(link, 'link', 'set', `p${i}`, 'master', 'br0')
        await ip(link, 'link', 'set', `p${i}`, 'up')
        sites.push({ name, address })
      }
      return { network, sites }
    } catch (err) {
      await network.destroy().catch(() => {})
      throw err
    }
  }

  async destroy (): Promise<void> {
    const errors: unknown[] = []
    for (const name of this.created.splice(0).reverse()) {
      await run('ip', ['netns', 'del', name]).catch((err) => errors.push(err))
    }
    if (errors.length > 0) throw new AggregateError(errors, `deleting the namespaces of ${this.tag}`)
  }

  private async add (name: string): Promise<string> {
    await run('ip', ['netns', 'add', name])
    this.created.push(name)
    await ip(name, 'link', 'set', 'lo', 'up')
    return name
  }
}

async function ip (netns: string, ...args: string[]): Promise<void> {
  await run('ip', ['-n', netns, ...args])
}

/** The command-line prefix that runs a command in a site's network namespace (same mount namespace, same /sys). */
export function netnsPrefix (netns: string): string[] {
  return ['nsenter', `--net=/run/netns/${netns}`]
}

/** The command line that runs `command` in a site's network namespace. */
export function inNetns (netns: string, command: string, args: string[]): [string, string[]] {
  const [nsenter, ...options] = netnsPrefix(netns)
  return [nsenter, [...options, command, ...args]]
}
