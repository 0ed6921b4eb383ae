/**
 * Lets a prom-client Registry take the text of scrape-time families from the families themselves
 * (ScrapeFamily.text) instead of formatting their values line by line. Everything else stays the
 * registry's: the order of families, other metrics, the OpenMetrics counter renaming and `# EOF`.
 *
 * prom-client 15's Registry.metrics() calls `this.getMetricsAsString(metric)` once per metric; that
 * method is not in its typings, so the hook is installed only where it exists, and only while the
 * registry has no default labels (whose placement prom-client decides); otherwise the registry's own
 * formatting runs, the same bytes but slower.
 */
import { Registry } from 'prom-client'
import { ScrapeFamily } from './scrape-family'

type MetricsAsString = (metric: unknown) => Promise<string>
interface RegistryInternals { getMetricsAsString?: MetricsAsString, _defaultLabels?: Record<string, unknown> }

const hooked = new WeakSet<Registry>()

export function formatScrapeFamiliesDirectly (registry: Registry): void {
  const internals = registry as unknown as RegistryInternals
  const own = internals.getMetricsAsString
  if (typeof own !== 'function' || hooked.has(registry)) return
  hooked.add(registry)
  internals.getMetricsAsString = async (metric: unknown): Promise<string> => {
    const defaults = internals._defaultLabels
    if (metric instanceof ScrapeFamily && (defaults === undefined || Object.keys(defaults).length === 0)) {
      return await metric.text((registry.contentType as string) === Registry.OPENMETRICS_CONTENT_TYPE)
    }
    return await own.call(registry, metric)
  }
}
