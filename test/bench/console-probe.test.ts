import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { ConsoleProbe } from '../../bench/support/console-probe'
import type { Teardownable } from '../support/teardownable'

// Two unix sockets stand in for the Source's and the Destination's QEMU serial consoles: the Source
// prints ticks and closes (the switchover), the Destination's socket appears only later and
// continues the count, from where the Source stopped or after a skip.

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

async function consoleServer (path: string, seqs: number[], closeAfter: boolean, cut?: { tail?: string, head?: string }): Promise<{ server: Server, done: Promise<number> }> {
  let finished: (at: number) => void = () => {}
  const done = new Promise<number>((resolve) => { finished = resolve })
  const server = createServer((socket) => {
    void (async () => {
      if (cut?.head !== undefined) socket.write(cut.head)
      for (const seq of seqs) { socket.write(`fedvm-tick ${seq}\r\n`); await sleep(10) }
      if (cut?.tail !== undefined) socket.write(cut.tail)
      finished(performance.now())
      if (closeAfter) socket.end()
    })()
  })
  await new Promise<void>((resolve) => server.listen(path, resolve))
  return { server, done }
}

async function switchover (t: Teardownable, destinationFirst: number, cut?: { tail: string, head: string }): Promise<ReturnType<ConsoleProbe['summary']>> {
  const dir = await mkdtemp(join(tmpdir(), 'console-probe-'))
  t.teardown(async () => await rm(dir, { recursive: true, force: true }))
  const probe = new ConsoleProbe()
  t.teardown(() => probe.close())
  const from = performance.now()
  const source = await consoleServer(join(dir, 's.sock'), Array.from({ length: 10 }, (_, i) => i), true, { tail: cut?.tail })
  t.teardown(() => source.server.close())
  probe.watch(join(dir, 's.sock'), 'source')
  probe.watch(join(dir, 'd.sock'), 'destination') // not there yet: retried until it is
  await source.done
  await sleep(150)
  const destination = await consoleServer(join(dir, 'd.sock'), Array.from({ length: 10 }, (_, i) => destinationFirst + i), false, { head: cut?.head })
  t.teardown(() => destination.server.close())
  await destination.done
  await sleep(20)
  return probe.summary(from, performance.now(), 'source', 'destination')
}

t.test('the gap from the Source console\'s last line to the Destination\'s first, on the host clock', async (t) => {
  const s = await switchover(t, 10)
  t.equal(s.lines, 20, 'every line of both consoles read')
  t.ok(s.switchoverGapMs !== undefined && s.switchoverGapMs >= 150, `the gap covers the 150 ms without a console (${String(s.switchoverGapMs)} ms)`)
  t.ok(s.switchoverGapMs !== undefined && s.switchoverGapMs < 1000, 'and is not the whole window')
  t.equal(s.maxGapMs, s.switchoverGapMs, 'the longest gap is the switchover')
  t.ok(s.destinationReadFromMs !== undefined && s.destinationReadFromMs >= 150, `the Destination's console read from when it appeared (${String(s.destinationReadFromMs)} ms)`)
  t.equal(s.switchoverSeqStep, 1, 'the count goes on by one across the switchover')
  t.equal(s.lost, 0, 'nothing lost')
  t.equal(s.duplicates, 0, 'nothing doubled')
})

t.test('lines the Destination printed before anyone read them show as lost', async (t) => {
  const s = await switchover(t, 13)
  t.equal(s.switchoverSeqStep, 4, 'the count jumps from 9 to 13')
  t.equal(s.lost, 3, 'three lines lost')
})

t.test('a line the switchover cut in two counts once, when its end arrives at the Destination', async (t) => {
  const s = await switchover(t, 11, { tail: 'fedvm-tick 1', head: '0\r\n' })
  t.equal(s.lines, 21, 'the cut line is read too')
  t.equal(s.switchoverSeqStep, 1, 'its number continues the count')
  t.equal(s.lost, 0, 'nothing lost')
})
