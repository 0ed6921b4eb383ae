import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Children } from './children'
import type { HostAgent } from './host-agents'
import type { Site } from './sites'

/** What a mode of the demo sets up before the story runs (directory hosts, or libvirt with a real VM). */
export interface Stage {
  a: Site
  b: Site
  c: Site
  vm: { id: string, intake: string }
  agents: HostAgent[]
  /** The rule in A's config: it fires a Forced migration. */
  rule: { name: string, when: string }
  /** A sealed KPI and, when the stage knows it, its plaintext and the folders (B, C, their hosts) no file of which may hold it. */
  sealed: { metric: string, plaintext?: string, notIn?: string[] }
  /** Makes the rule's condition hold; returns the line that says how. */
  surge: () => Promise<string>
  /** How long to wait for the VM's first rows and for the rule (a real VM boots first). */
  patienceMs: number
}

type Say = (line: string) => void

interface Location { vmId: string, kind: string, target: string, upstream: string | null }
interface StoredDelivery { id: string, metric: string, format: string, function?: string, to: number, value?: number, samples?: Array<{ ts: number, value: number | string }>, sealed: boolean }

/**
 * The federation at work, told one line a step, with the `fedvm` commands a user would type:
 * place at A (delegated through B to C), the KPIs relayed to A and read there, the rule firing a
 * Forced migration, monitoring following the VM, a migration by hand (`fedvm migrate`), and where
 * each site believes the VM is.
 */
export async function runStory (stage: Stage, children: Children, say: Say): Promise<void> {
  const { a, b, c, vm } = stage
  const fedvm = async (name: string, args: string[]): Promise<any> => {
    const result = await children.run(name, args)
    if (result.code !== 0) throw new Error(`fedvm ${args.join(' ')} exited with ${String(result.code)}: ${(result.stdout + result.stderr).trim()}`)
    return JSON.parse(result.stdout)
  }
  const where = async (site: Site): Promise<Location | undefined> =>
    ((await fedvm(`status-${site.id}`, ['site', 'status', '--config', site.configFile])).locations as Location[]).find((l) => l.vmId === vm.id)
  const stored = async (): Promise<StoredDelivery[]> =>
    (await fedvm('monitor-query', ['monitor', 'query', '--config', a.configFile, '--vm', vm.id, '--output', 'json'])).deliveries

  const placing = Date.now()
  const placed = await fedvm('place', ['site', 'place', '--config', a.configFile, '--vm', vm.id, '--dir', vm.intake, '--descriptor', join(vm.intake, 'descriptor.json')])
  if (placed.outcome !== 'migrated') throw new Error(`fedvm site place: ${JSON.stringify(placed)}`)
  const first = await where(c)
  if (first?.kind !== 'host') throw new Error(`site-c does not hold ${vm.id} after the placement: ${JSON.stringify(first)}`)
  // B's log shows whether a file passed through B: a delegating site only passes on control messages.
  const throughB = b.daemon!.events().some((e) => e.event === 'transfer-progress' || e.event === 'transfer-received')
  say(`placed (fedvm site place at site-a): ${vm.id} went to partner ${String(placed.destination)}, which delegated it to site-c's host ${first.target} ` +
    `(${Date.now() - placing} ms; ${throughB ? 'the files passed through B' : 'the files went from A\'s proxy straight to C\'s, none through B'})`)

  const firstAgent = agentOf(stage.agents, first.target)
  await firstAgent.daemon.waitFor(new RegExp(`discovery: VM ${vm.id} is here`), stage.patienceMs)
  const early = await until('the first KPI rows at site-a', async () => {
    const d = await stored()
    return raws(d).length >= 4 && d.some((x) => x.metric === stage.sealed.metric) ? d : undefined
  }, stage.patienceMs)
  say(`monitoring: ${first.target}'s agent found ${vm.id} in its VM folder and follows its KPI feed; C relays to B, B to A: A stored ${early.length} deliveries so far`)

  const table = await children.run('monitor-table', ['monitor', 'query', '--config', a.configFile, '--vm', vm.id, '--output', 'table'])
  if (table.code !== 0) throw new Error(`fedvm monitor query --output table: ${table.stderr.trim()}`)
  const lines = table.stdout.trimEnd().split('\n')
  say(`A's view (fedvm monitor query --config site-a/site.json --vm ${vm.id} --output table), ${lines.length - 1} rows${lines.length <= 8 ? '' : ', the first and the newest'}:`)
  for (const line of lines.length <= 8 ? lines : [lines[0], ...lines.slice(1, 3), '…', ...lines.slice(-4)]) process.stdout.write(`           ${line}\n`)

  const sealed = early.find((d) => d.metric === stage.sealed.metric)!
  const opened = sealed.samples?.[0]?.value ?? sealed.value
  const leaks = stage.sealed.plaintext === undefined ? [] : await filesHolding(stage.sealed.notIn ?? [], stage.sealed.plaintext)
  say(`sealed KPI ${stage.sealed.metric}: relayed sealed (sealed: ${String(sealed.sealed)}), opened at A with A's seal.key: ${String(opened)}` +
    (stage.sealed.plaintext === undefined ? '' : `; files of B, C and C's hosts holding "${stage.sealed.plaintext}": ${leaks.length === 0 ? 'none' : leaks.join(', ')}`))

  say(await stage.surge())
  const event = async (name: RegExp, timeoutMs: number): Promise<Record<string, any>> =>
    await until(`site-a to log ${String(name)}`, async () => a.daemon!.events().find((e) => name.test(String(e.event))), timeoutMs)
  const fired = await event(/^rule-fired$/, stage.patienceMs)
  say(`A's rule "${stage.rule.name}" (${stage.rule.when}) fired: value ${String(fired.value)} held ${Number(fired.heldMs) / 1000} s of data time → Forced migration`)
  const action = await event(/^rule-action-(done|failed)$/, 120_000)
  if (action.event !== 'rule-action-done') throw new Error(`the Forced migration failed: ${JSON.stringify(action)}`)
  const rowsBefore = rowCheck(await stored()).last
  const now = await where(c)
  if (now?.kind !== 'host') throw new Error(`site-c does not hold ${vm.id} after the Forced migration: ${JSON.stringify(now)}`)
  say(`Forced migration done by A's Controller: ${vm.id} went to partner ${String(action.result?.destination)} again, now on site-c's host ${now.target} ` +
    `(moved from ${first.target}, ${movedHow(action.result)})`)

  const nextAgent = agentOf(stage.agents, now.target)
  await nextAgent.daemon.waitFor(new RegExp(`discovery: VM ${vm.id} is here`), stage.patienceMs)
  const after = await until('rows at site-a from after the move, with no gap', async () => {
    const rows = rowCheck(await stored())
    return rows.last > rowsBefore + 2 && rows.missing.length === 0 ? rows : undefined
  }, stage.patienceMs).catch(async () => rowCheck(await stored()))
  const { repeats, missing } = after
  const taken = await rowsReceived(nextAgent.metricsUrl, vm.id)
  say(`monitoring follows: ${now.target}'s agent took up the feed where ${first.target}'s stopped (${taken} rows read from the guest); A holds rows 1..${after.last} of the guest's KPI database: ` +
    `${repeats === 0 ? 'each once' : `${repeats} repeated`}, ${missing.length === 0 ? 'none missing' : `missing: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? '…' : ''}`}`)

  const migrating = Date.now()
  const again = await fedvm('migrate', ['migrate', '--config', a.configFile, '--vm', vm.id])
  if (again.outcome !== 'migrated') throw new Error(`fedvm migrate: ${JSON.stringify(again)}`)
  const last = await where(c)
  say(`by hand (fedvm migrate at site-a): ${vm.id} went to partner ${String(again.destination)} again, now on site-c's host ${String(last?.target)} (${Date.now() - migrating} ms)`)

  const seen = await Promise.all([a, b, c].map(async (site) => [site.id, await where(site)] as const))
  say(`where is ${vm.id}? ${seen.map(([id, l]) => `${id}: "${l === undefined ? 'unknown' : `${l.kind} ${l.target}`}"`).join(' · ')}`)
}

/** How many KPI rows an agent read from the VM's guest so far: the sum of its fedvm_kpi_writes_total{domain}. */
async function rowsReceived (metricsUrl: string, domain: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text()
  let sum = 0
  for (const m of text.matchAll(/^fedvm_kpi_writes_total\{([^}]*)\} (\d+)$/gm)) if (m[1].includes(`domain="${domain}"`)) sum += Number(m[2])
  return sum
}

function agentOf (agents: HostAgent[], hostId: string): HostAgent {
  const agent = agents.find((x) => x.hostId === hostId)
  if (agent === undefined) throw new Error(`no agent runs for host ${hostId}`)
  return agent
}

function raws (deliveries: StoredDelivery[]): StoredDelivery[] {
  return deliveries.filter((d) => d.format === 'raw')
}

/**
 * The guest database's rows as the raw deliveries carry them (an id ends in `EPOCH.SEQ`, or
 * `EPOCH.SEQ:PART` for an encrypted KPI): a row read by several specifiers arrives once for each,
 * so repeats are counted per metric; a row is missing when no metric brought it.
 */
function rowCheck (deliveries: StoredDelivery[]): { last: number, repeats: number, missing: number[] } {
  const byMetric = new Map<string, number[]>()
  for (const d of raws(deliveries)) {
    const m = /:[0-9a-f]+\.(\d+)(?::\d+)?$/.exec(d.id)
    if (m !== null) byMetric.set(d.metric, [...byMetric.get(d.metric) ?? [], Number(m[1])])
  }
  const all = new Set([...byMetric.values()].flat())
  const last = Math.max(0, ...all)
  const repeats = [...byMetric.values()].reduce((n, seqs) => n + seqs.length - new Set(seqs).size, 0)
  return { last, repeats, missing: Array.from({ length: last }, (_, i) => i + 1).filter((n) => !all.has(n)) }
}

/** Polls `probe` until it returns a value. */
async function until<T> (what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`waited ${timeoutMs / 1000} s for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 300))
  }
}

/** Files under `dirs` whose bytes hold `text` (sockets and other non-files skipped). */
async function filesHolding (dirs: string[], text: string): Promise<string[]> {
  const found: string[] = []
  const visit = async (dir: string): Promise<void> => {
    let entries
    try {
      entries = await readdir(dir, { withFileTypes: true })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
      throw err
    }
    for (const e of entries) {
      const path = join(dir, e.name)
      if (e.isDirectory()) await visit(path)
      else if (e.isFile() && (await readFile(path)).includes(text)) found.push(path)
    }
  }
  for (const dir of dirs) await visit(dir)
  return found
}

/** How the VM moved: live (libvirt's switchover downtime) or cold (its files copied and checked). */
function movedHow (result: Record<string, any> | undefined): string {
  const took = `${String(result?.durationMs)} ms`
  if (result?.path === 'live') return `live, ${took}, paused ${result.downtimeMs === undefined ? 'only to switch over' : `${String(result.downtimeMs)} ms to switch over`}`
  return `${took}, digests agree: ${String(result?.digestsAgree)}`
}
