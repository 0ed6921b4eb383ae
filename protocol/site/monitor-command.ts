import { parseArgs } from 'node:util'
import { EXIT } from '../cli/exit-codes'
import { UsageError } from '../cli/usage-error'
import { ConfigError } from '../errors'
import { loadSiteConfig } from './load-config'
import { openStoreForReading, queryDeliveries } from '../primary/primary-queries'
import { queryJson, queryTable } from '../primary/query-output'
import { parseQueryTime } from '../primary/query-time'
import { SealedOpener } from '../primary/sealed-opener'

const USAGE = 'fedvm monitor query --config SITE.json --vm ID [--metric M] [--since T] [--until T] [--output json|table] [--limit N]'
const DEFAULT_LIMIT = 10_000

/**
 * `fedvm monitor query`: what the primary site stored for a VM (its monitoring.db), sealed values
 * opened with the site's seal.key. T is an ISO time, Unix ms, or a duration ago ("10m"). Read-only:
 * it runs beside the daemon. Opened values go to stdout only.
 */
export async function run (argv: string[]): Promise<number> {
  const [sub, ...rest] = argv
  if (sub !== 'query') throw new UsageError(`unknown sub-command ${JSON.stringify(sub ?? '')}\nusage: ${USAGE}`)
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
    ...(values.since !== undefined ? { since: parseQueryTime(values.since, '--since', now) } : {}),
    ...(values.until !== undefined ? { until: parseQueryTime(values.until, '--until', now) } : {}),
    limit,
  }
  let config
  try {
    config = await loadSiteConfig(values.config)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    process.stderr.write(`fedvm monitor: bad config ${values.config}: ${err.message}\n`)
    return EXIT.CONFIG
  }
  const opener = await SealedOpener.load(config.keys)
  const db = openStoreForReading(config.stateDir)
  try {
    const opened = []
    for (const d of queryDeliveries(db, query)) opened.push(await opener.open(d))
    process.stdout.write(values.output === 'table' ? queryTable(opened) : queryJson(query, opened))
    return EXIT.OK
  } finally {
    db.close()
  }
}
