// The floor of bench/agent-cost: the least a Node process does to take KPI rows from a guestfs feed
// (connect, hello, split and decode every frame, ack each chunk), and nothing else. Prints its own
// CPU time once `count` rows arrived.
// It starts after the rows a host acknowledged (hello with resume).
// Usage: node dist/bench/agent-feed-floor.js unix:PATH COUNT
import { connect } from 'node:net'
import { decodeFrame, encodeFrame, FEED_VERSION, LineSplitter } from '../protocol/kpi-feed/frames'

const [endpoint, count] = process.argv.slice(2)
const wanted = Number(count)
const cpuAtStart = process.cpuUsage()
const socket = connect(endpoint.slice('unix:'.length))
const lines = new LineSplitter()
let rows = 0
let epoch: string | undefined
socket.setEncoding('utf8')
socket.on('connect', () => socket.write(encodeFrame({ v: FEED_VERSION, t: 'hello', after: '0', resume: true, id: 'floor' })))
socket.on('data', (chunk: string) => {
  let last: string | undefined
  lines.push(chunk, (line) => {
    const frame = decodeFrame(line)
    if (frame.t === 'stats') epoch = frame.acked === undefined ? undefined : frame.epoch
    if (frame.t === 'row') {
      rows++
      last = frame.seq
    }
  })
  if (last !== undefined && epoch !== undefined) socket.write(encodeFrame({ v: FEED_VERSION, t: 'ack', seq: last, epoch }))
  if (rows >= wanted) {
    const cpu = process.cpuUsage(cpuAtStart)
    process.stdout.write(JSON.stringify({ rows, cpuSeconds: (cpu.user + cpu.system) / 1e6 }) + '\n')
    socket.destroy()
  }
})
