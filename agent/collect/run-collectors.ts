/**
 * Runs every collector once, concurrently, each with its own deadline: times it, and turns a
 * rejection, a missed deadline or a collector still busy from an earlier scrape into
 * `success: false` with the reason, never into a rejection of the whole run.
 */
import type { Collector, Sample } from '../../host/collector'
import { CollectError } from './errors'

export interface CollectorOutcome {
  collector: string
  durationSeconds: number
  success: boolean
  samples: Sample[]
  error?: CollectError
}

export interface RunOptions {
  deadlineMs: number
  /** Names of collectors whose previous collect() has not settled (kept by the caller across runs). */
  busy: Set<string>
}

export async function runCollectors (collectors: readonly Collector[], options: RunOptions): Promise<CollectorOutcome[]> {
  return await Promise.all(collectors.map(async c => await runOne(c, options)))
}

async function runOne (collector: Collector, { deadlineMs, busy }: RunOptions): Promise<CollectorOutcome> {
  const started = process.hrtime.bigint()
  const elapsed = (): number => Number(process.hrtime.bigint() - started) / 1e9
  if (busy.has(collector.name)) {
    return failed(collector, elapsed(), new CollectError('COLLECTOR_BUSY', collector.name, `collector ${collector.name} is still busy with an earlier scrape`))
  }
  const controller = new AbortController()
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      const err = new CollectError('COLLECTOR_DEADLINE', collector.name, `collector ${collector.name} missed its ${deadlineMs} ms deadline`)
      controller.abort(err)
      reject(err)
    }, deadlineMs)
  })
  busy.add(collector.name)
  const work = Promise.resolve().then(async () => await collector.collect(controller.signal))
  void work.then(() => busy.delete(collector.name), () => busy.delete(collector.name))
  try {
    const samples = await Promise.race([work, deadline])
    return { collector: collector.name, durationSeconds: elapsed(), success: true, samples }
  } catch (err) {
    const error = err instanceof CollectError
      ? err
      : new CollectError('COLLECTOR_FAILED', collector.name, `collector ${collector.name} failed: ${(err as Error)?.message ?? String(err)}`, { cause: err })
    return failed(collector, elapsed(), error)
  } finally {
    clearTimeout(timer)
  }
}

function failed (collector: Collector, durationSeconds: number, error: CollectError): CollectorOutcome {
  return { collector: collector.name, durationSeconds, success: false, samples: [], error }
}
