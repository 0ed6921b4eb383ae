import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { z } from 'zod'
import { AgentError } from '../errors'
import { describeIssues } from '../../protocol/zod-issues'
import { listenSchema, parseListenAddress } from '../../protocol/http/listen-address'
import { NatsConsumerSchema } from './nats-consumer-config'
import { DEFAULT_DEAD_LETTER_LIMITS, DEFAULT_UNAUTHENTICATED_AFTER_MS, DEFAULT_UNPLACED_AFTER_MS } from '../state/dead-letters'

export const DEFAULTS = {
  listen: '127.0.0.1:9464',
  stateDir: '/var/lib/fedvm/agent',
} as const

const VmSchema = z.object({
  name: z.string().min(1).regex(/^[^/\0]+$/, 'must not contain / or NUL'),
  descriptor: z.string().min(1),
  feed: z.string().regex(/^unix:.+$/, 'must be unix:PATH (a guestfs feed socket, or the VM\'s virtio-serial channel socket)').optional(),
  /** The libvirt domain, for hypervisor metrics (defaults to the VM name). */
  domain: z.string().min(1).optional(),
}).strict()

const HttpConsumerSchema = z.object({
  type: z.literal('http'),
  url: z.string().url().regex(/^https?:\/\//, 'must be an http(s) URL'),
  name: z.string().min(1).optional(),
  /**
   * This host's id in its site's `hosts[]` and its key file (`fedvm host-key`): each batch is signed
   * with it, as the site's ingest requires (unless the site turned ingest authentication off).
   */
  host: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'must be this host\'s id in the site config').optional(),
  hostKey: z.string().min(1).optional(),
}).strict().refine((c) => (c.host === undefined) === (c.hostKey === undefined), { path: ['hostKey'], message: 'host and hostKey go together' })

/** Publishes to a NATS JetStream stream the site consumes; its schema is in its own file. */
const ConsumerSchema = z.discriminatedUnion('type', [HttpConsumerSchema, NatsConsumerSchema])

/**
 * VM discovery: every `vmDir/ID/` laid out as host/vm-folder/libvirt-host.ts keeps it
 * (descriptor.json, domain.xml) whose libvirt domain runs is followed without a `vms` entry.
 */
const DiscoverSchema = z.object({
  vmDir: z.string().min(1),
  /** How often the folder and libvirt's domain list are looked at (ms). */
  intervalMs: z.number().int().min(100).max(3_600_000).default(2000),
}).strict()

/** Where hypervisor metrics come from: libvirtd's socket (the read-only one is enough). */
const HypervisorSchema = z.object({
  type: z.literal('libvirt'),
  socket: z.string().min(1).optional(),
  /** How often data points named in specifiers are read for the specifier engine (ms). */
  pollIntervalMs: z.number().int().min(100).default(1000),
  /**
   * Statistics groups /metrics keeps between scrapes, read again once older than keptMaxAgeMs
   * (host/libvirt/libvirt-collector.ts; default balloon and vcpu). [] reads every group at every scrape.
   */
  keptGroups: z.array(z.enum(['balloon', 'vcpu'])).optional(),
  keptMaxAgeMs: z.number().int().min(0).max(3_600_000).optional(),
}).strict()

/** How much the dead-letter store keeps (agent/state/dead-letters.ts): the oldest entries go first past either bound. */
const DeadLettersSchema = z.object({
  maxRows: z.number().int().min(1).max(10_000_000).default(DEFAULT_DEAD_LETTER_LIMITS.maxRows),
  maxAgeMs: z.number().int().min(60_000).default(DEFAULT_DEAD_LETTER_LIMITS.maxAgeMs),
  /** A delivery the site refuses for where its VM is is retried this long after it was queued, then set aside. */
  unplacedAfterMs: z.number().int().min(1000).default(DEFAULT_UNPLACED_AFTER_MS),
  /** A delivery the site refuses for this host's signature (401) is retried this long after it was queued, then set aside. */
  unauthenticatedAfterMs: z.number().int().min(1000).default(DEFAULT_UNAUTHENTICATED_AFTER_MS),
}).strict()

const ConfigSchema = z.object({
  listen: listenSchema.default(DEFAULTS.listen),
  /** A web config file for /metrics (Prometheus exporter-toolkit's web.config.yml form: TLS, basic auth). */
  webConfig: z.string().min(1).optional(),
  stateDir: z.string().min(1).default(DEFAULTS.stateDir),
  vms: z.array(VmSchema).default([]),
  consumers: z.array(ConsumerSchema).default([]),
  hypervisor: HypervisorSchema.optional(),
  discover: DiscoverSchema.optional(),
  deadLetters: DeadLettersSchema.default({ ...DEFAULT_DEAD_LETTER_LIMITS, unplacedAfterMs: DEFAULT_UNPLACED_AFTER_MS, unauthenticatedAfterMs: DEFAULT_UNAUTHENTICATED_AFTER_MS }),
}).strict().superRefine((config, ctx) => {
  const names = new Set<string>()
  config.vms.forEach((vm, i) => {
    if (names.has(vm.name)) ctx.addIssue({ code: 'custom', path: ['vms', i, 'name'], message: `duplicate VM name "${vm.name}"` })
    names.add(vm.name)
  })
})

export type AgentConfig = z.infer<typeof ConfigSchema>
export type VmConfig = z.infer<typeof VmSchema>
export type ConsumerConfig = z.infer<typeof ConsumerSchema>
export type HypervisorConfig = z.infer<typeof HypervisorSchema>
export type DiscoverConfig = z.infer<typeof DiscoverSchema>

/** Parses and validates; relative paths (descriptors, state, sockets) are taken from the config file's folder. */
export function parseConfig (json: unknown, file: string): AgentConfig {
  const result = ConfigSchema.safeParse(json)
  if (!result.success) throw new AgentError('CONFIG_INVALID', `${file}: ${describeIssues(result.error)}`)
  const base = dirname(resolve(file))
  const config = result.data
  return {
    ...config,
    stateDir: resolve(base, config.stateDir),
    ...(config.webConfig === undefined ? {} : { webConfig: resolve(base, config.webConfig) }),
    vms: config.vms.map((vm) => ({
      ...vm,
      descriptor: resolve(base, vm.descriptor),
      feed: vm.feed && `unix:${resolve(base, vm.feed.slice(5))}`,
    })),
    consumers: config.consumers.map((c) => {
      if (c.type === 'http' && c.hostKey !== undefined) return { ...c, hostKey: resolve(base, c.hostKey) }
      if (c.type === 'nats' && c.nkeySeedFile !== undefined) return { ...c, nkeySeedFile: resolve(base, c.nkeySeedFile) }
      return c
    }),
    hypervisor: config.hypervisor && { ...config.hypervisor, socket: config.hypervisor.socket && resolve(base, config.hypervisor.socket) },
    discover: config.discover && { ...config.discover, vmDir: resolve(base, config.discover.vmDir) },
  }
}

export async function loadConfig (file: string): Promise<AgentConfig> {
  let json: unknown
  try {
    json = JSON.parse(await readFile(file, 'utf8'))
  } catch (err) {
    throw new AgentError('CONFIG_INVALID', `${file}: ${(err as Error).message}`, { cause: err })
  }
  return parseConfig(json, file)
}

export function listenAddress (listen: string): { host: string, port: number } {
  const address = parseListenAddress(listen)
  if (address === undefined) throw new AgentError('CONFIG_INVALID', `listen: must be HOST:PORT (port 0 to 65535), not "${listen}"`)
  return address
}
