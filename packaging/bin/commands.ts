/** A sub-command: loaded only when run, so `fedvm seal` never loads FUSE or SQLite. */
export interface Command {
  readonly name: string
  readonly usage: string
  readonly summary: string
  readonly load: () => Promise<{ run (argv: string[]): Promise<number> }>
}

/** Every fedvm sub-command, in the order `fedvm --help` lists them. */
export const COMMANDS: readonly Command[] = [
  {
    name: 'guestfs',
    usage: 'fedvm guestfs mount MOUNTPOINT --db FILE [--sync normal|full] [--feed unix:PATH|dev:PATH]',
    summary: 'serve the KPI filesystem inside a VM',
    load: () => import('../../guestfs/cli.js'),
  },
  {
    name: 'agent',
    usage: 'fedvm agent run --config FILE',
    summary: 'run the host agent: KPI feeds, monitoring specifiers, /metrics, push delivery',
    load: () => import('../../agent/cli.js'),
  },
  {
    name: 'keygen',
    usage: 'fedvm keygen --site ID --out DIR',
    summary: 'make a site\'s keys: sealing pair, Ed25519 signing pair, TLS key + certificate; prints what partners need',
    load: () => import('../../protocol/crypto/keygen-command.js'),
  },
  {
    name: 'site',
    usage: 'fedvm site run|migrate|place|evict|cancel|status --config FILE [--vm ID] [--dir DIR] [--descriptor FILE]',
    summary: 'run a site daemon (federation protocol, transfer proxies), or ask it to migrate, place, evict a VM or cancel its transfer',
    load: () => import('../../protocol/site/site-command.js'),
  },
  {
    name: 'migrate',
    usage: 'fedvm migrate --config FILE --vm ID',
    summary: 'run the Controller: migrate a VM to the best offer, print the outcome as JSON',
    load: () => import('../../protocol/site/migrate-command.js'),
  },
  {
    name: 'monitor',
    usage: 'fedvm monitor query --config SITE.json --vm ID [--metric M] [--since T] [--until T] [--output json|table]',
    summary: 'show what the primary site stored of a VM\'s monitoring data (sealed values opened with its seal.key)',
    load: () => import('../../protocol/site/monitor-command.js'),
  },
  {
    name: 'seal',
    usage: 'fedvm seal --to PRIMARY_PUBLIC_KEY|FILE < value > sealed',
    summary: 'seal a value for the primary site (for encrypted/)',
    load: () => import('../../protocol/crypto/seal-command.js'),
  },
  {
    name: 'unseal',
    usage: 'fedvm unseal --key PRIMARY_SECRET_KEY_FILE < sealed > value',
    summary: 'open a sealed value with the primary site\'s secret key',
    load: () => import('../../protocol/crypto/unseal-command.js'),
  },
  {
    name: 'demo',
    usage: 'fedvm demo',
    summary: 'mount guestfs on a temporary directory, write KPIs, print the rows',
    load: () => import('../demo/demo.js'),
  },
]
