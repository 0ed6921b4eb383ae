import t from 'tap'
import { ConfigError } from '../../../protocol/errors'
import { parseMonitoringConfig } from '../../../protocol/site/monitoring-config'

/** The field a bad value is reported under, with the message. */
function refusal (value: unknown): string {
  try {
    parseMonitoringConfig(value)
    return 'accepted'
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    return `${err.field}: ${err.message}`
  }
}

t.test('the monitoring section: defaults, and a bad value names its field', async (t) => {
  t.match(parseMonitoringConfig(undefined), { forwardLingerMs: 5, tombstoneMs: 24 * 3600_000 })
  t.equal(parseMonitoringConfig(undefined).ingest, undefined, 'no ingest unless asked for')
  t.match(parseMonitoringConfig({ ingest: '127.0.0.1:9470', forwardLingerMs: 0 }), { ingest: '127.0.0.1:9470', forwardLingerMs: 0 })
  t.match(refusal({ ingest: 'everywhere' }), /^monitoring\.ingest: .*HOST:PORT/)
  t.match(refusal({ forwardLingerMs: -1 }), /^monitoring\.forwardLingerMs: /)
  t.match(refusal({ tombstoneMs: 'long' }), /^monitoring\.tombstoneMs: /)
  t.match(refusal({ ingset: '127.0.0.1:1' }), /^monitoring\.ingset: .*is not a known setting/)
  t.match(refusal([]), /^monitoring: /)
})
