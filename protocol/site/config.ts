import { dirname, isAbsolute, resolve } from 'node:path'
import { decodeKey } from '../crypto/key-files'
import { normalizeFingerprint } from '../crypto/tls-certificate'
import { SITE_ID } from '../site-id'
import { ConfigError } from '../errors'
import { parseListenAddress } from '../http/listen-address'
import { parseMonitoringConfig, type MonitoringConfig } from './monitoring-config'

export type ExposePolicy = 'all' | 'local' | string[]

export interface PartnerConfig { id: string, url: string, publicKey: string, tlsFingerprint: string }
export interface HostConfig {
  id: string
  vmDir: string
  maxVms: number
  /** A host backed by a libvirt connection; without it the host is a plain directory of VM files. */
  libvirt?: { uri: string, leaveBy: 'save' | 'shutdown' }
  /** What VMs may use in all (default for libvirt hosts: the machine's, from `virsh nodeinfo`). */
  memoryMiB?: number
  vcpus?: number
}
export interface ProxyConfig {
  listen: string
  /** The address destination proxies connect to (https://HOST:PORT); defaults to https://LISTEN. Needed when listen is a wildcard. */
  url: string
  maxBytesPerSecond?: number
}

export interface SiteConfig {
  id: string
  listen: string
  keys: string
  partners: PartnerConfig[]
  policy: { delegate: boolean, expose: ExposePolicy, acceptFrom: string[], prefer: string[] }
  hosts: HostConfig[]
  proxies: ProxyConfig[]
  stateDir: string
  /** Monitoring relay to the primary site; every sub-key has a default. */
  monitoring: MonitoringConfig
  /** Protocol limits; every one has a default. */
  limits: {
    timestampWindowMs: number
    chainWindowMs: number
    hopBudget: number
    maxHops: number
    maxRequestBytes: number
    tokenTtlMs: number
    requestTimeoutMs: number
    transferTimeoutMs: number
    initiateAttempts: number
    parallelRanges: number
    chunkBytes: number
  }
}

export const DEFAULT_LIMITS: SiteConfig['limits'] = {
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
}

const HOST_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/

/** Validates a parsed config file; relative paths are taken from the config file's folder. */
export function parseSiteConfig (value: unknown, configFile: string): SiteConfig {
  const base = dirname(resolve(configFile))
  const c = object(value, '(config)')
  known(c, '(config)', ['id', 'listen', 'keys', 'partners', 'policy', 'hosts', 'proxies', 'stateDir', 'limits', 'monitoring'])
  const id = pattern(c.id, 'id', SITE_ID, 'lower-case letters, digits, "." and "-"')
  const partners = array(c.partners ?? [], 'partners').map((p, i) => partner(p, `partners[${i}]`))
  unique(partners.map((p) => p.id), 'partners', 'id')
  if (partners.some((p) => p.id === id)) throw new ConfigError('partners', `the site ${id} cannot be its own partner`)
  const partnerIds = new Set(partners.map((p) => p.id))
  const hosts = array(c.hosts ?? [], 'hosts').map((h, i) => host(h, `hosts[${i}]`, base))
  unique(hosts.map((h) => h.id), 'hosts', 'id')
  const proxies = array(c.proxies, 'proxies').map((p, i) => proxy(p, `proxies[${i}]`))
  if (proxies.length === 0) throw new ConfigError('proxies', 'at least one transfer proxy is needed')
  return {
    id,
    listen: listenAddress(c.listen, 'listen'),
    keys: path(c.keys, 'keys', base),
    partners,
    policy: policy(c.policy ?? {}, partnerIds),
    hosts,
    proxies,
    stateDir: path(c.stateDir, 'stateDir', base),
    limits: limits(c.limits ?? {}),
    monitoring: parseMonitoringConfig(c.monitoring),
  }
}

function partner (value: unknown, where: string): PartnerConfig {
  const p = object(value, where)
  known(p, where, ['id', 'url', 'publicKey', 'tlsFingerprint'])
  const url = string(p.url, `${where}.url`)
  if (!/^https:\/\/[^/]+$/.test(url.replace(/\/$/, ''))) throw new ConfigError(`${where}.url`, 'must be https://HOST:PORT')
  const publicKey = string(p.publicKey, `${where}.publicKey`)
  try {
    decodeKey(`${where}.publicKey`, publicKey)
  } catch (err) {
    throw new ConfigError(`${where}.publicKey`, 'must be the base64 Ed25519 public key that `fedvm keygen` printed', { cause: err })
  }
  const tlsFingerprint = normalizeFingerprint(string(p.tlsFingerprint, `${where}.tlsFingerprint`))
  if (tlsFingerprint === undefined) throw new ConfigError(`${where}.tlsFingerprint`, 'must be a SHA-256 fingerprint (64 hex digits)')
  return { id: pattern(p.id, `${where}.id`, SITE_ID, 'a site id'), url: url.replace(/\/$/, ''), publicKey, tlsFingerprint }
}

function host (value: unknown, where: string, base: string): HostConfig {
  const h = object(value, where)
  known(h, where, ['id', 'vmDir', 'maxVms', 'libvirt', 'memoryMiB', 'vcpus'])
  const result: HostConfig = { id: pattern(h.id, `${where}.id`, HOST_ID, 'a host id'), vmDir: path(h.vmDir, `${where}.vmDir`, base), maxVms: integer(h.maxVms, `${where}.maxVms`, 0) }
  if (h.libvirt !== undefined) result.libvirt = libvirtConnection(h.libvirt, `${where}.libvirt`)
  if (result.libvirt === undefined && (h.memoryMiB !== undefined || h.vcpus !== undefined)) {
    throw new ConfigError(`${where}.${h.memoryMiB !== undefined ? 'memoryMiB' : 'vcpus'}`, 'only a host with a libvirt connection counts memory and vCPUs')
  }
  if (h.memoryMiB !== undefined) result.memoryMiB = integer(h.memoryMiB, `${where}.memoryMiB`, 0)
  if (h.vcpus !== undefined) result.vcpus = integer(h.vcpus, `${where}.vcpus`, 0)
  return result
}

function libvirtConnection (value: unknown, where: string): NonNullable<HostConfig['libvirt']> {
  const l = object(value, where)
  known(l, where, ['uri', 'leaveBy'])
  const uri = string(l.uri, `${where}.uri`)
  // A libvirt URI names its driver (qemu, qemu+ssh, qemu+unix, test, …) before "://".
  if (!/^[a-z][a-z0-9]*(\+[a-z0-9]+)?:\/\/\S*$/.test(uri)) throw new ConfigError(`${where}.uri`, `${JSON.stringify(uri)} is not a libvirt URI (e.g. qemu:///system)`)
  const leaveBy = l.leaveBy ?? 'save'
  if (leaveBy !== 'save' && leaveBy !== 'shutdown') throw new ConfigError(`${where}.leaveBy`, 'must be "save" or "shutdown"')
  return { uri, leaveBy }
}

function proxy (value: unknown, where: string): ProxyConfig {
  const p = object(value, where)
  known(p, where, ['listen', 'url', 'maxBytesPerSecond'])
  const listen = listenAddress(p.listen, `${where}.listen`)
  const url = p.url === undefined ? `https://${listen}` : string(p.url, `${where}.url`).replace(/\/$/, '')
  if (!/^https:\/\/[^/]+$/.test(url)) throw new ConfigError(`${where}.url`, 'must be https://HOST:PORT')
  const result: ProxyConfig = { listen, url }
  if (p.maxBytesPerSecond !== undefined) result.maxBytesPerSecond = integer(p.maxBytesPerSecond, `${where}.maxBytesPerSecond`, 1)
  return result
}

function policy (value: unknown, partnerIds: Set<string>): SiteConfig['policy'] {
  const p = object(value, 'policy')
  known(p, 'policy', ['delegate', 'expose', 'acceptFrom', 'prefer'])
  const delegate = p.delegate ?? false
  if (typeof delegate !== 'boolean') throw new ConfigError('policy.delegate', 'must be true or false')
  let expose: ExposePolicy = 'all'
  if (p.expose === 'all' || p.expose === 'local') expose = p.expose
  else if (Array.isArray(p.expose)) expose = siteList(p.expose, 'policy.expose', partnerIds)
  else if (p.expose !== undefined) throw new ConfigError('policy.expose', 'must be "all", "local" or a list of partner ids')
  return {
    delegate,
    expose,
    acceptFrom: siteList(p.acceptFrom ?? [...partnerIds], 'policy.acceptFrom', partnerIds),
    prefer: siteList(p.prefer ?? [], 'policy.prefer', partnerIds),
  }
}

function limits (value: unknown): SiteConfig['limits'] {
  const l = object(value, 'limits')
  known(l, 'limits', Object.keys(DEFAULT_LIMITS))
  const result = { ...DEFAULT_LIMITS }
  for (const key of Object.keys(DEFAULT_LIMITS) as Array<keyof SiteConfig['limits']>) {
    if (l[key] !== undefined) result[key] = integer(l[key], `limits.${key}`, key === 'hopBudget' ? 0 : 1)
  }
  return result
}

function siteList (value: unknown, field: string, partnerIds: Set<string>): string[] {
  return array(value, field).map((entry, i) => {
    const id = string(entry, `${field}[${i}]`)
    if (!partnerIds.has(id)) throw new ConfigError(`${field}[${i}]`, `${id} is not in partners`)
    return id
  })
}

function object (value: unknown, field: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigError(field, 'must be an object')
  return value as Record<string, unknown>
}

function known (value: Record<string, unknown>, field: string, keys: string[]): void {
  for (const key of Object.keys(value)) if (!keys.includes(key)) throw new ConfigError(field === '(config)' ? key : `${field}.${key}`, 'is not a known setting')
}

function array (value: unknown, field: string): unknown[] {
  if (!Array.isArray(value)) throw new ConfigError(field, 'must be a list')
  return value
}

function string (value: unknown, field: string): string {
  if (typeof value !== 'string' || value === '') throw new ConfigError(field, 'must be a non-empty string')
  return value
}

function pattern (value: unknown, field: string, re: RegExp, what: string): string {
  const text = string(value, field)
  if (!re.test(text)) throw new ConfigError(field, `${JSON.stringify(text)} is not ${what}`)
  return text
}

function listenAddress (value: unknown, field: string): string {
  const text = string(value, field)
  if (parseListenAddress(text) === undefined) throw new ConfigError(field, `${JSON.stringify(text)} is not HOST:PORT (port 0 to 65535)`)
  return text
}

function integer (value: unknown, field: string, min: number): number {
  if (!Number.isSafeInteger(value) || (value as number) < min) throw new ConfigError(field, `must be an integer ≥ ${min}`)
  return value as number
}

function path (value: unknown, field: string, base: string): string {
  const text = string(value, field)
  return isAbsolute(text) ? text : resolve(base, text)
}

function unique (ids: string[], field: string, key: string): void {
  const seen = new Set<string>()
  ids.forEach((id, i) => {
    if (seen.has(id)) throw new ConfigError(`${field}[${i}].${key}`, `${id} appears twice`)
    seen.add(id)
  })
}
