/**
 * What `fedvm help`, `--help` and a usage error show for one command line: its usage line, one
 * sentence, its options and an example that runs as written (given the files it names).
 */
export interface Help {
  readonly usage: string
  readonly summary: string
  /** [flag as the usage writes it, what it means]. */
  readonly options?: ReadonlyArray<readonly [string, string]>
  readonly example: string
}

/** A sub-command (`fedvm site migrate`): its name is the first word after the command. */
export interface SubCommand extends Help {
  readonly name: string
}

/**
 * A command's module: `run` resolves when the command succeeded and throws when it did not. An
 * error with `code: 'usage'` (or Node's `ERR_PARSE_ARGS_*`) is a usage error; the dispatcher turns
 * every code into an exit status (exit-codes.ts), so no command returns a number.
 */
export interface CommandModule {
  run (argv: string[]): Promise<void>
}

/** A command: loaded only when run, so `fedvm seal` never loads FUSE or SQLite. */
export interface Command extends Help {
  readonly name: string
  readonly subcommands?: readonly SubCommand[]
  readonly load: () => Promise<CommandModule>
}

const CONFIG_SITE: readonly [string, string] = ['--config FILE', 'the site\'s config (JSON); the daemon of that config is asked']
const VM: readonly [string, string] = ['--vm ID', 'the VM\'s id']
const TO: readonly [string, string] = ['--to SITE|HOST', 'pin the destination: this site\'s id (its own hosts only), a partner\'s id (that partner, and where it delegates), or one of this site\'s hosts']
const MIGRATE_JSON: readonly [string, string] = ['--json', 'print only the JSON outcome (as when stdout is not a terminal); on a terminal a progress line is drawn while the migration runs']

/** Every fedvm command, in the order `fedvm --help` lists them. The one place commands are declared. */
export const COMMANDS: readonly Command[] = [
  {
    name: 'guestfs',
    usage: 'fedvm guestfs mount MOUNTPOINT --db FILE [--sync normal|full] [--feed unix:PATH|dev:PATH]',
    summary: 'serve the KPI filesystem inside a VM',
    example: 'fedvm guestfs mount /kpi --db /var/lib/fedvm/guestfs/kpi.db --feed dev:/dev/virtio-ports/org.fedvm.kpi.0',
    load: () => import('../../guestfs/cli.js'),
    subcommands: [{
      name: 'mount',
      usage: 'fedvm guestfs mount MOUNTPOINT --db FILE [--sync normal|full] [--feed unix:PATH|dev:PATH]',
      summary: 'mount the KPI filesystem on MOUNTPOINT in the foreground; SIGINT or SIGTERM unmounts it cleanly',
      options: [
        ['--db FILE', 'the SQLite database the KPIs are stored in (made if missing)'],
        ['--sync normal|full', 'normal: a committed row survives a crash of guestfs; full: also a power loss (default normal)'],
        ['--feed unix:PATH|dev:PATH', 'serve the KPI feed to the host agent on a unix socket or a virtio-serial port'],
      ],
      example: 'fedvm guestfs mount /kpi --db /var/lib/fedvm/guestfs/kpi.db --feed dev:/dev/virtio-ports/org.fedvm.kpi.0',
    }],
  },
  {
    name: 'agent',
    usage: 'fedvm agent run|dead-letters --config FILE [--consumer NAME] [--limit N] [--requeue (--id N ...|--all) [--reason CODE]]',
    summary: 'run the host agent: KPI feeds, monitoring specifiers, /metrics, push delivery; list or requeue deliveries refused for good',
    example: 'fedvm agent run --config /etc/fedvm/agent.json',
    load: () => import('../../agent/cli.js'),
    subcommands: [{
      name: 'run',
      usage: 'fedvm agent run --config FILE',
      summary: 'run the host agent until SIGINT or SIGTERM; SIGHUP re-reads the config and the VM descriptors',
      options: [['--config FILE', 'the agent\'s config (JSON): listen address, state folder, VMs, consumers']],
      example: 'fedvm agent run --config /etc/fedvm/agent.json',
    }, {
      name: 'dead-letters',
      usage: 'fedvm agent dead-letters --config FILE [--consumer NAME] [--limit N] [--requeue (--id N ...|--all) [--reason CODE]]',
      summary: 'print the deliveries a receiver refused for good (the dead-letter store beside the outbox), oldest first, one JSON object a line, beside the running agent; --requeue moves them back into the outbox once their cause is fixed',
      options: [
        ['--config FILE', 'the agent\'s config (its stateDir holds agent.db)'],
        ['--consumer NAME', 'only this consumer\'s (its name, else its URL)'],
        ['--limit N', 'print at most N (default 1000)'],
        ['--requeue', 'move the chosen entries back to the end of the outbox in one transaction (running agent or not); prints each moved'],
        ['--id N', 'with --requeue: the entry whose seq the listing printed (repeat for more; an id not found moves nothing)'],
        ['--all', 'with --requeue: every entry (of configured consumers)'],
        ['--reason CODE', 'with --requeue: only entries refused with this code (e.g. bad-signature)'],
      ],
      example: 'fedvm agent dead-letters --config /etc/fedvm/agent.json',
    }],
  },
  {
    name: 'keygen',
    usage: 'fedvm keygen --out DIR [--site ID]',
    summary: 'make a site\'s keys: sealing pair, Ed25519 signing pair, TLS key + certificate; prints what partners need',
    options: [
      ['--out DIR', 'the folder for the keys (made if missing; existing keys are never overwritten)'],
      ['--site ID', 'the site\'s id, written into its TLS certificate (default: the name of DIR)'],
    ],
    example: 'fedvm keygen --site site-a --out /var/lib/fedvm/site/keys',
    load: () => import('../../protocol/crypto/keygen-command.js'),
  },
  {
    name: 'host-key',
    usage: 'fedvm host-key --host ID --out DIR',
    summary: 'make a VM host\'s Ed25519 key pair: its agent signs monitoring batches with it; prints the site config\'s hosts[] id and publicKey',
    options: [
      ['--host ID', 'the host\'s id in the site config'],
      ['--out DIR', 'the folder for host.key (secret) and host.pub (made if missing; existing keys are never overwritten)'],
    ],
    example: 'fedvm host-key --host h1 --out /var/lib/fedvm/agent/keys',
    load: () => import('../../protocol/crypto/host-key-command.js'),
  },
  {
    name: 'site',
    usage: 'fedvm site run|migrate|place|evict|cancel|status|dead-letters --config FILE [--vm ID] [--to SITE|HOST] [--dir DIR] [--descriptor FILE] [--json] [--next-hop SITE] [--limit N] [--requeue (--id N ...|--all) [--reason CODE]]',
    summary: 'run a site daemon (federation protocol, transfer proxies), or ask it to migrate, place, evict a VM or cancel its transfer; list or requeue relayed deliveries the next hop refused for good',
    example: 'fedvm site status --config /etc/fedvm/site.json',
    load: () => import('../../protocol/site/site-command.js'),
    subcommands: [
      {
        name: 'run',
        usage: 'fedvm site run --config FILE',
        summary: 'serve the federation protocol and the transfer proxies until SIGINT or SIGTERM',
        options: [['--config FILE', 'the site\'s config (JSON): id, listen address, keys, partners, policy, hosts, proxies']],
        example: 'fedvm site run --config /etc/fedvm/site.json',
      },
      {
        name: 'migrate',
        usage: 'fedvm site migrate --config FILE --vm ID [--to SITE|HOST] [--json]',
        summary: 'run the Controller at the site\'s daemon: migrate the VM to the best offer, print the outcome as JSON (as `fedvm migrate`)',
        options: [CONFIG_SITE, VM, TO, MIGRATE_JSON],
        example: 'fedvm site migrate --config /etc/fedvm/site.json --vm web-1 --to site-b',
      },
      {
        name: 'place',
        usage: 'fedvm site place --config FILE --vm ID --dir DIR [--descriptor FILE]',
        summary: 'primary placement: hand the daemon a new VM from a folder of its files; it goes to the best offer',
        options: [CONFIG_SITE, VM, ['--dir DIR', 'the folder holding the VM\'s files (the daemon reads it)'], ['--descriptor FILE', 'the VM descriptor (JSON, or an OVF envelope with fedvm\'s section): primary site, resources, monitoring specifiers']],
        example: 'fedvm site place --config /etc/fedvm/site.json --vm web-1 --dir /srv/vms/web-1 --descriptor web-1.json',
      },
      {
        name: 'evict',
        usage: 'fedvm site evict --config FILE --vm ID',
        summary: 'force a VM away from this site: the site that delegated it here moves it (Forced migration)',
        options: [CONFIG_SITE, VM],
        example: 'fedvm site evict --config /etc/fedvm/site.json --vm web-1',
      },
      {
        name: 'cancel',
        usage: 'fedvm site cancel --config FILE --vm ID',
        summary: 'stop the VM\'s transfers that this site started or serves; the VM stays where it was',
        options: [CONFIG_SITE, VM],
        example: 'fedvm site cancel --config /etc/fedvm/site.json --vm web-1',
      },
      {
        name: 'status',
        usage: 'fedvm site status --config FILE [--json]',
        summary: 'list the VMs this site is responsible for, where each is (a host, or only the partner it went to), and the migrations running with their progress',
        options: [CONFIG_SITE, ['--json', 'print the status as JSON (as when stdout is not a terminal); on a terminal it is a line each']],
        example: 'fedvm site status --config /etc/fedvm/site.json',
      },
      {
        name: 'dead-letters',
        usage: 'fedvm site dead-letters --config FILE [--next-hop SITE] [--limit N] [--requeue (--id N ...|--all) [--reason CODE]]',
        summary: 'print the relayed deliveries the next hop refused for good (dead rows of the relay outbox), oldest first, one JSON object a line, beside the running daemon; --requeue moves them back to the end of the queue once their cause is fixed',
        options: [
          ['--config FILE', 'the site\'s config (its stateDir holds monitoring.db)'],
          ['--next-hop SITE', 'only rows for this next hop (a partner\'s id)'],
          ['--limit N', 'print at most N (default 1000)'],
          ['--requeue', 'move the chosen rows back to the end of their hop\'s queue in one transaction (daemon running or not); prints each moved'],
          ['--id N', 'with --requeue: the row whose seq the listing printed (repeat for more; a seq not found moves nothing)'],
          ['--all', 'with --requeue: every dead row (for partners the config has)'],
          ['--reason CODE', 'with --requeue: only rows the hop refused with this code (e.g. bad-request; none with it: nothing moves, stderr says so)'],
        ],
        example: 'fedvm site dead-letters --config /etc/fedvm/site.json --next-hop site-a',
      },
    ],
  },
  {
    name: 'migrate',
    usage: 'fedvm migrate --config FILE --vm ID [--to SITE|HOST] [--json]',
    summary: 'run the Controller: migrate a VM to the best offer (this site\'s own hosts first) or where --to pins it, print the outcome as JSON (on a terminal after a progress line)',
    options: [CONFIG_SITE, VM, TO, MIGRATE_JSON],
    example: 'fedvm migrate --config /etc/fedvm/site.json --vm web-1 --to site-b',
    load: () => import('../../protocol/site/migrate-command.js'),
  },
  {
    name: 'vm',
    usage: 'fedvm vm update|shutdown|start|suspend|resume --config SITE.json --vm ID [--descriptor FILE | --patch FILE | --memory-mib N --vcpus N] [--version N]',
    summary: 'the Control interface: change a VM\'s descriptor or run state from its primary site; the change travels down the chain of delegation to the site running the VM, and the outcome is printed as JSON',
    example: 'fedvm vm update --config /etc/fedvm/site.json --vm web-1 --patch web-1-monitoring.json',
    load: () => import('../../protocol/control/vm-command.js'),
    subcommands: [
      {
        name: 'update',
        usage: 'fedvm vm update --config SITE.json --vm ID (--descriptor FILE | --patch FILE | --memory-mib N --vcpus N) [--version N]',
        summary: 'send a new descriptor, or a patch of its monitoring specifiers and resources; the host agent applies new specifiers without a restart, a running domain gets new memory and vCPUs where libvirt can',
        options: [
          CONFIG_SITE,
          VM,
          ['--descriptor FILE', 'the whole new descriptor (JSON, or an OVF envelope with fedvm\'s section); its id and primary site cannot change'],
          ['--patch FILE', 'JSON {monitoring?, resources?}: replaces the specifiers, changes the resources it names'],
          ['--memory-mib N, --vcpus N', 'a patch of the resources only'],
          ['--version N', 'the version the update makes, above the one in force (default: one above the newest this site knows)'],
        ],
        example: 'fedvm vm update --config /etc/fedvm/site.json --vm web-1 --patch web-1-monitoring.json',
      },
      ...(['shutdown', 'start', 'suspend', 'resume'] as const).map((action) => ({
        name: action,
        usage: `fedvm vm ${action} --config SITE.json --vm ID`,
        summary: `${action} the VM where it runs: a libvirt host acts on its domain, a directory host records the state`,
        options: [CONFIG_SITE, VM],
        example: `fedvm vm ${action} --config /etc/fedvm/site.json --vm web-1`,
      })),
    ],
  },
  {
    name: 'monitor',
    usage: 'fedvm monitor query --config SITE.json --vm ID [--metric M] [--since T] [--until T] [--output json|table] [--limit N]',
    summary: 'show what the primary site stored of a VM\'s monitoring data (sealed values opened with its seal.key)',
    example: 'fedvm monitor query --config /etc/fedvm/site.json --vm web-1 --since 10m --output table',
    load: () => import('../../protocol/site/monitor-command.js'),
    subcommands: [{
      name: 'query',
      usage: 'fedvm monitor query --config SITE.json --vm ID [--metric M] [--since T] [--until T] [--output json|table] [--limit N]',
      summary: 'print the stored deliveries of a VM, oldest first; read-only, so it runs beside the daemon',
      options: [
        ['--config SITE.json', 'the primary site\'s config (its state folder and keys)'],
        VM,
        ['--metric M', 'only this metric, e.g. kpi:users.current_users or cpu.time'],
        ['--since T, --until T', 'a time window: an ISO time, Unix milliseconds, or a duration ago (10m, 2h)'],
        ['--output json|table', 'JSON (default) or a table for people'],
        ['--limit N', 'at most N rows (default 10000)'],
      ],
      example: 'fedvm monitor query --config /etc/fedvm/site.json --vm web-1 --since 10m --output table',
    }],
  },
  {
    name: 'descriptor',
    usage: 'fedvm descriptor from-ovf|to-ovf FILE [--configuration ID] [--into PACKAGE.ovf]',
    summary: 'convert a VM descriptor between JSON and an OVF envelope with fedvm\'s monitoring section, checking it on the way',
    example: 'fedvm descriptor from-ovf web-1.ovf > web-1.json',
    load: () => import('../../agent/descriptor/descriptor-command.js'),
    subcommands: [
      {
        name: 'from-ovf',
        usage: 'fedvm descriptor from-ovf FILE.ovf [--configuration ID]',
        summary: 'print the JSON descriptor an OVF 2.x envelope holds: its VirtualSystem\'s id and hardware, fedvm\'s section; other sections are skipped',
        options: [
          ['FILE.ovf', 'the envelope (a package\'s .ovf file), or - for standard input'],
          ['--configuration ID', 'the deployment option whose hardware is read (default: the envelope\'s default one)'],
        ],
        example: 'fedvm descriptor from-ovf web-1.ovf > web-1.json',
      },
      {
        name: 'to-ovf',
        usage: 'fedvm descriptor to-ovf FILE.json [--into PACKAGE.ovf]',
        summary: 'print an OVF 2.0 envelope for a JSON descriptor: id, resources, primary site and monitoring specifiers',
        options: [
          ['FILE.json', 'the descriptor, or - for standard input'],
          ['--into PACKAGE.ovf', 'print this envelope (a tool\'s export of the VM) with fedvm\'s section put into its VirtualSystem instead'],
        ],
        example: 'fedvm descriptor to-ovf web-1.json > web-1.ovf',
      },
    ],
  },
  {
    name: 'seal',
    usage: 'fedvm seal --to PRIMARY_PUBLIC_KEY|FILE < value > sealed',
    summary: 'seal a value for the primary site (for encrypted/)',
    options: [['--to KEY|FILE', 'the primary site\'s seal.pub: the base64 key itself, or a file holding it']],
    example: 'echo 4711 | fedvm seal --to keys/seal.pub > /kpi/encrypted/revenue',
    load: () => import('../../protocol/crypto/seal-command.js'),
  },
  {
    name: 'unseal',
    usage: 'fedvm unseal --key PRIMARY_SECRET_KEY_FILE < sealed > value',
    summary: 'open a sealed value with the primary site\'s secret key',
    options: [['--key FILE', 'the primary site\'s seal.key (a file: a key on the command line would show in ps)']],
    example: 'fedvm unseal --key keys/seal.key < sealed-value',
    load: () => import('../../protocol/crypto/unseal-command.js'),
  },
  {
    name: 'demo',
    usage: 'fedvm demo [--vm] [--keep]',
    summary: 'three sites on 127.0.0.1: a VM placed A → B → C, its KPIs relayed to A, a rule at A forcing a migration; cleans up after itself',
    options: [
      ['--vm', 'a real VM (libvirt and the test VM image) instead of directory hosts'],
      ['--keep', 'keep the temporary folder (configs, state, every process\'s log) after stopping everything'],
    ],
    example: 'fedvm demo',
    load: () => import('../demo/demo.js'),
  },
]
