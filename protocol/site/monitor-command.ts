import { parseArgs } from 'node:util'
import { UsageError } from '../errors'
import { loadSiteConfig } from './load-config'
import { openStoreForReading, queryDeliveries } from '../primary/primary-queries'
import { queryJson, queryTable } from '../primary/query-output'
import { parseQueryTime } from '../primary/query-time'
import { SealedOpener } from '../primary/sealed-opener'

const DEFAULT_LIMIT = 10_000

/**
 * `fedvm monitor query`: what the primary site stored for a VM (its monitoring.db), sealed values
 * opened with the site's seal.key. T is an ISO time, Unix ms, or a duration ago ("10m"). Read-only:
 * it runs beside the daemon. Opened values go to stdout only.
 */
export async function run (argv: string[]): Promise<void> {
  const [sub, ...rest] = argv
  if (sub !== 'query') throw new UsageError(sub === undefined ? 'a sub-command is missing (query)' : `unknown monitor sub-command ${JSON.stringify(sub)}`)
  const { values } = parseArgs({
    args: rest,
    options: {
      config: { type: 'string' }, vm: { type: 'string' }, metric: { type: 'string' }, since: { type: 'string' }, until: { type: 'string' },
      output: { type: 'string', short: 'o', default: 'json' }, limit: { type: 'string' },
    },
  })
  if (!values.config) throw new UsageError('--config SITE.json is required')
  if (!values.vm) throw new UsageError('--vm ID is required')
  if (values.output !== 'json' && values.output !== 'table') throw new UsageError('--output must be json or table')
  const limit = values.limit === undefined ? DEFAULT_LIMIT : Number(values.limit)
  if (!Number.isSafeInteger(limit) || limit < 1) throw new UsageError('--limit must be a positive integer')
  const now = Date.now()
  const query = {
    vm: values.vm,
    ...(values.metric !== undefined ? { metric: values.metric } : {}),
    ...(values.since !== undefined ? { since: queryTime(values.since, '--since', now) } : {}),
    ...(values.until !== undefined ? { until: queryTime(values.until, '--until', now) } : {}),
    limit,
  }
  const config = await loadSiteConfig(values.config)
  const opener = await SealedOpener.load(config.keys)
  const db = openStoreForReading(config.stateDir)
  try {
    const opened = []
    for (const d of queryDeliveries(db, query)) opened.push(await opener.open(d))
    process.stdout.write(values.output === 'table' ? queryTable(opened) : queryJson(query, opened))
  } finally {
    db.close()
  }
}

/** A time the command line gives that does not read as one is a usage error. */
function queryTime (text: string, option: string, now: number): number {
  try {
    return parseQueryTime(text, option, now)
  } catch (err) {
    throw new UsageError((err as Error).message, { cause: err })
  }
}
