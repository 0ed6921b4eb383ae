import { dirname, isAbsolute, resolve } from 'node:path'
import { z } from 'zod'
import { decodeKey } from '../crypto/key-files'
import { normalizeFingerprint } from '../crypto/tls-certificate'
import { ConfigError } from '../errors'
import { parseListenAddress } from '../http/listen-address'
import { DEFAULT_CONNECTION_LIMITS } from '../http/connection-guard'
import { SITE_ID } from '../site-id'
import { issueField, issueMessage } from '../zod-issues'
import { dashboardSchema } from './dashboard/dashboard-config'
import { MonitoringSchema } from './monitoring-config'
import { DEFAULT_MAX_DOWNTIME_MS } from '../../host/libvirt/live-source'
import { MAX_BANDWIDTH_MIBS } from '../../host/libvirt/live-params'

export const DEFAULT_LIMITS = {
  timestampWindowMs: 30_000,
  chainWindowMs: 300_000,
  hopBudget: 4,
  maxHops: 8,
  maxRequestBytes: 256 * 1024,
  tokenTtlMs: 15 * 60_000,
  requestTimeoutMs: 30_000,
  transferTimeoutMs: 30 * 60_000,
  initiateAttempts: 5,
  parallelRanges: 4,
  chunkBytes: 8 * 1024 * 1024,
  /** The longest wait between attempts to carry a migration's decision to a side, or to ask for it. */
  settleRetryMaxMs: 30_000,
  // Every listener (site server, proxies, ingest, /metrics): http/connection-guard.ts.
  handshakeTimeoutMs: DEFAULT_CONNECTION_LIMITS.handshakeTimeoutMs,
  headersTimeoutMs: DEFAULT_CONNECTION_LIMITS.headersTimeoutMs,
  idleTimeoutMs: DEFAULT_CONNECTION_LIMITS.idleTimeoutMs,
  maxConnectionsPerPeer: DEFAULT_CONNECTION_LIMITS.maxConnectionsPerPeer,
} as const

const HOST_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/
/** A libvirt URI names its driver (qemu, qemu+ssh, qemu+unix, test, …) before "://". */
const LIBVIRT_URI = /^[a-z][a-z0-9]*(\+[a-z0-9]+)?:\/\/\S*$/
const HTTPS_URL = /^https:\/\/[^/]+$/

// The messages say what a value must be in the words the README uses; the field comes from the path.
const text = z.string({ error: 'must be a non-empty string' }).min(1, 'must be a non-empty string')
const list = <T extends z.ZodType>(item: T) => z.array(item, { error: 'must be a list' })
const object = <T extends z.ZodRawShape>(shape: T) => z.strictObject(shape, { error: 'must be an object' })
const integer = (min: number) => z.number({ error: `must be an integer ≥ ${min}` }).int(`must be an integer ≥ ${min}`)
  .min(min, `must be an integer ≥ ${min}`).max(Number.MAX_SAFE_INTEGER, `must be an integer ≥ ${min}`)
const BANDWIDTH = `must be an integer of MiB/s from 1 to ${MAX_BANDWIDTH_MIBS}`
const bandwidthMiBs = z.number({ error: BANDWIDTH }).int(BANDWIDTH).min(1, BANDWIDTH).max(MAX_BANDWIDTH_MIBS, BANDWIDTH)
const matching = (re: RegExp, what: string) => text.refine((value) => re.test(value), { error: (issue) => `${JSON.stringify(issue.input)} is not ${what}` })
const listenAddress = text.refine((value) => parseListenAddress(value) !== undefined, { error: (issue) => `${JSON.stringify(issue.input)} is not HOST:PORT (port 0 to 65535)` })
/** A path; a relative one is taken from the config file's folder (`base`). */
const path = (base: string) => text.transform((value) => isAbsolute(value) ? value : resolve(base, value))
const httpsUrl = text.transform((value) => value.replace(/\/$/, '')).refine((value) => HTTPS_URL.test(value), 'must be https://HOST:PORT')

const PartnerSchema = object({
  id: matching(SITE_ID, 'a site id'),
  url: httpsUrl,
  publicKey: text.refine((value) => { try { decodeKey('publicKey', value); return true } catch { return false } }, 'must be the base64 Ed25519 public key that `fedvm keygen` printed'),
  tlsFingerprint: text.transform((value, ctx) => normalizeFingerprint(value) ?? (ctx.addIssue({ code: 'custom', message: 'must be a SHA-256 fingerprint (64 hex digits)' }), z.NEVER)),
})

const HostSchema = (base: string) => object({
  id: matching(HOST_ID, 'a host id'),
  vmDir: path(base),
  maxVms: integer(0),
  /** The host's Ed25519 public key (`fedvm host-key`): its agent signs each batch it posts to the monitoring ingest. */
  publicKey: text.refine((value) => { try { decodeKey('publicKey', value); return true } catch { return false } }, 'must be the base64 Ed25519 public key that `fedvm host-key` printed').optional(),
  /** A host backed by a libvirt connection; without it the host is a plain directory of VM files. */
  libvirt: object({
    uri: text.refine((value) => LIBVIRT_URI.test(value), { error: (issue) => `${JSON.stringify(issue.input)} is not a libvirt URI (e.g. qemu:///system)` }),
    /** 'live': a running VM migrates live where the destination host can (a libvirt host); else, and with 'save' or 'shutdown', it leaves cold. */
    leaveBy: z.enum(['live', 'save', 'shutdown'], { error: 'must be "live", "save" or "shutdown"' }).default('live'),
    /** Live migration: the longest pause for the switchover (libvirt's max downtime). */
    maxDowntimeMs: integer(1).default(DEFAULT_MAX_DOWNTIME_MS),
    /** Live migration: how long it may take before it is aborted and the VM keeps running here; default 800 s per GiB of memory and disks. */
    completionTimeoutMs: integer(1).optional(),
    /** Live migration: the most it sends, in MiB/s (libvirt's migration bandwidth: the memory stream and each disk's copy); unset: unlimited. */
    migrationBandwidthMiBs: bandwidthMiBs.optional(),
    /**
     * Live migration: QEMU's downtime limit starts small and rises to maxDowntimeMs while the memory moves
     * (host/libvirt/downtime-ramp.ts). Off by default, and for KVM domains only: under TCG the extra memory passes
     * corrupt guests, so a TCG domain never ramps (the host log says so).
     */
    downtimeRamp: z.boolean({ error: 'must be true or false' }).default(false),
  }).optional(),
  /** What VMs may use in all (default for libvirt hosts: the machine's, from `virsh nodeinfo`). */
  memoryMiB: integer(0).optional(),
  vcpus: integer(0).optional(),
}).superRefine((host, ctx) => {
  if (host.libvirt !== undefined) return
  for (const key of ['memoryMiB', 'vcpus'] as const) {
    if (host[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: 'only a host with a libvirt connection counts memory and vCPUs' })
  }
})

const ProxySchema = object({
  listen: listenAddress,
  /** The address destination proxies connect to (https://HOST:PORT); defaults to https://LISTEN. Needed when listen is a wildcard. */
  url: httpsUrl.optional(),
  maxBytesPerSecond: integer(1).optional(),
}).transform(({ url, ...proxy }) => ({ ...proxy, url: url ?? `https://${proxy.listen}` }))

const PolicySchema = object({
  delegate: z.boolean({ error: 'must be true or false' }).default(false),
  expose: z.union([z.literal('all'), z.literal('local'), list(text)], { error: 'must be "all", "local" or a list of partner ids' }).default('all'),
  /** Default: every partner. */
  acceptFrom: list(text).optional(),
  prefer: list(text).default([]),
  /** Who may control a VM (descriptor updates, run state): its primary site only, or any site on its chain of delegation. */
  controlFrom: z.enum(['primary', 'chain'], { error: 'must be "primary" or "chain"' }).default('primary'),
  /** As an Intermediary, carry the files of the offers it passes on through its own proxy: Source and Destination never learn each other's proxy. */
  relayTransfers: z.boolean({ error: 'must be true or false' }).default(false),
})

const LimitsSchema = object(Object.fromEntries(Object.entries(DEFAULT_LIMITS).map(([key, value]) => [key, integer(key === 'hopBudget' ? 0 : 1).default(value)])) as {
  [K in keyof typeof DEFAULT_LIMITS]: z.ZodDefault<z.ZodNumber>
})

function siteConfigSchema (base: string) {
  return object({
    id: matching(SITE_ID, 'lower-case letters, digits, "." and "-"'),
    listen: listenAddress,
    keys: path(base),
    partners: list(PartnerSchema).default([]),
    policy: PolicySchema.default({ delegate: false, expose: 'all', prefer: [], controlFrom: 'primary', relayTransfers: false }),
    hosts: list(HostSchema(base)).default([]),
    proxies: list(ProxySchema).min(1, 'at least one transfer proxy is needed'),
    stateDir: path(base),
    /** Protocol limits; every one has a default. */
    limits: LimitsSchema.default(LimitsSchema.parse({})),
    /** Monitoring relay to the primary site; every sub-key has a default. */
    monitoring: MonitoringSchema.default(MonitoringSchema.parse({})),
    /** The read-only web page (dashboard/dashboard-config.ts); off unless asked for. */
    dashboard: dashboardSchema(base),
  }).transform((config, ctx) => {
    const partnerIds = new Set(config.partners.map((p) => p.id))
    const duplicate = (ids: string[], field: string): void => {
      const seen = new Set<string>()
      ids.forEach((id, i) => {
        if (seen.has(id)) ctx.addIssue({ code: 'custom', path: [field, i, 'id'], message: `${id} appears twice` })
        seen.add(id)
      })
    }
    duplicate(config.partners.map((p) => p.id), 'partners')
    if (partnerIds.has(config.id)) ctx.addIssue({ code: 'custom', path: ['partners'], message: `the site ${config.id} cannot be its own partner` })
    duplicate(config.hosts.map((h) => h.id), 'hosts')
    const partnersOnly = (ids: string[], field: string): void => {
      ids.forEach((id, i) => { if (!partnerIds.has(id)) ctx.addIssue({ code: 'custom', path: ['policy', field, i], message: `${id} is not in partners` }) })
    }
    const { expose, acceptFrom = [...partnerIds], prefer, delegate, controlFrom, relayTransfers } = config.policy
    if (Array.isArray(expose)) partnersOnly(expose, 'expose')
    partnersOnly(acceptFrom, 'acceptFrom')
    partnersOnly(prefer, 'prefer')
    const webConfig = config.monitoring.metricsWebConfig
    const monitoring = webConfig === undefined || isAbsolute(webConfig) ? config.monitoring : { ...config.monitoring, metricsWebConfig: resolve(base, webConfig) }
    return { ...config, monitoring, policy: { delegate, expose, acceptFrom, prefer, controlFrom, relayTransfers } }
  })
}

export type SiteConfig = z.infer<ReturnType<typeof siteConfigSchema>>
export type PartnerConfig = SiteConfig['partners'][number]
export type HostConfig = SiteConfig['hosts'][number]
export type ProxyConfig = SiteConfig['proxies'][number]
export type ExposePolicy = SiteConfig['policy']['expose']

/** Validates a parsed config file; relative paths are taken from the config file's folder. The first problem is a ConfigError naming its field. */
export function parseSiteConfig (value: unknown, configFile: string): SiteConfig {
  const result = siteConfigSchema(dirname(resolve(configFile))).safeParse(value)
  if (result.success) return result.data
  const issue = result.error.issues[0]
  throw new ConfigError(issueField(issue), issueMessage(issue))
}
