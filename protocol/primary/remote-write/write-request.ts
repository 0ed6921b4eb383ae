import protobuf from 'protobufjs'
import { compress } from 'snappyjs'

/** One series of a remote-write request: its labels (with `__name__`) and samples at their own times (ms). */
export interface Series {
  labels: Record<string, string>
  samples: Array<{ value: number, timestamp: number }>
}

// Prometheus' remote-write 1.0 messages (prompb/remote.proto, types.proto), only the fields fedvm sends.
const root = protobuf.Root.fromJSON({
  nested: {
    prometheus: {
      nested: {
        WriteRequest: { fields: { timeseries: { rule: 'repeated', type: 'TimeSeries', id: 1 } } },
        TimeSeries: { fields: { labels: { rule: 'repeated', type: 'Label', id: 1 }, samples: { rule: 'repeated', type: 'Sample', id: 2 } } },
        Label: { fields: { name: { type: 'string', id: 1 }, value: { type: 'string', id: 2 } } },
        Sample: { fields: { value: { type: 'double', id: 1 }, timestamp: { type: 'int64', id: 2 } } },
      },
    },
  },
})
const WriteRequest = root.lookupType('prometheus.WriteRequest')

/**
 * The body of a remote-write POST: a protobuf WriteRequest, Snappy-compressed (block format). Labels
 * are sorted by name and samples by time, as the receiver expects of a series.
 */
export function encodeWriteRequest (series: readonly Series[]): Uint8Array {
  const timeseries = series.map((s) => ({
    labels: Object.keys(s.labels).sort().map((name) => ({ name, value: s.labels[name] })),
    samples: [...s.samples].sort((a, b) => a.timestamp - b.timestamp),
  }))
  return compress(WriteRequest.encode(WriteRequest.fromObject({ timeseries })).finish())
}

