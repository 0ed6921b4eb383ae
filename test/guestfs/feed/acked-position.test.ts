import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { TestMount } from '../../support/guestfs-mount'
import { connectAsHost, type PeerConnection } from '../../agent/support/fake-feed-peers'
import { waitFor } from '../../support/wait'

// the feed cursor travels with the VM. Hosts ack the rows they made durable; guestfs
// keeps the highest ack (in memory, which a saved VM carries, and in _fedvm_meta for a shutdown),
// and a host with no cursor of its own (the one a VM migrated to) says hello with `resume`:
// it is served from there. A fake host (this test) talks to the real guestfs over its unix feed.

/** `after` undefined: a host with no cursor, asking to resume from the acknowledged position. */
const hello = (after?: number, id?: string) => JSON.stringify({ v: 1, t: 'hello', after: String(after ?? 0), ...(after === undefined ? { resume: true } : {}), ...(id ? { id } : {}) }) + '\n'
const ack = (seq: number, epoch: string) => JSON.stringify({ v: 1, t: 'ack', seq: String(seq), epoch }) + '\n'

/** The host's view of one connection: the first line (stats) and the row sequences that followed. */
async function served (host: PeerConnection, rows: number): Promise<{ stats: Record<string, unknown>, seqs: string[] }> {
  const stats = await host.line(0)
  const seqs: string[] = []
  for (let i = 1; i <= rows; i++) seqs.push((await host.line(i)).seq as string)
  return { stats, seqs }
}

t.test('the acknowledged position: kept across connections and a guestfs restart, a resuming hello starts there', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-acked-')) // short: a unix socket path has at most 107 bytes
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const feed = join(dir, 'feed.sock')
  const args = ['--feed', `unix:${feed}`]
  const mount = await TestMount.create(t, { extraArgs: args })
  for (let i = 1; i <= 8; i++) t.equal((await mount.sh(`printf 'v\\n${i}\\n' > "$KPI"`, { KPI: mount.path('unencrypted', 'k') })).code, 0)

  const first = await connectAsHost(t, feed)
  first.write(hello(0))
  const one = await served(first, 8)
  t.equal(one.stats.t, 'stats')
  t.equal(one.stats.acked, '0', 'a fresh database: nothing acknowledged yet (and the field says this guest takes acks)')
  t.strictSame(one.seqs, ['1', '2', '3', '4', '5', '6', '7', '8'])
  const epoch = one.stats.epoch as string
  first.write(ack(5, epoch))
  first.write(ack(8, 'ffffffffffffffff')) // another database's ack: no position in this one
  first.write(ack(3, epoch)) // older than the position: changes nothing
  await waitFor('a stats frame carrying the ack', () => first.lines.some((l) => JSON.parse(l).acked === '5'), 5000)
  t.notOk(first.isClosed, 'acks do not end the connection')
  first.close()

  const second = await connectAsHost(t, feed)
  second.write(hello(undefined, 'c0ffee-2'))
  const two = await served(second, 3)
  t.equal(two.stats.hello, 'c0ffee-2', 'the stats answering a hello name it')
  t.notOk('hello' in one.stats, 'and only when the hello had an id')
  t.equal(two.stats.acked, '5', 'the acknowledged position is the highest ack of this database')
  t.strictSame(two.seqs, ['6', '7', '8'], 'a resuming hello is served from the acknowledged position')
  second.write(ack(99, epoch))
  t.ok(await second.closedWithin(3000), 'an ack beyond the last committed row closes the connection')
  t.match((await mount.logLines(/closing connection after a bad frame/, 1))[0], /ack of row 99 beyond the last committed row 8/, 'with the reason logged')

  t.same(await mount.signal('SIGTERM'), { code: 0, signal: null }, 'guestfs stopped (a cold shutdown)')
  await mount.start(args)
  const third = await connectAsHost(t, feed)
  third.write(hello())
  const three = await served(third, 3)
  t.equal(three.stats.acked, '5', 'the position survived the restart (_fedvm_meta)')
  t.equal(three.stats.epoch, epoch, 'same database')
  t.strictSame(three.seqs, ['6', '7', '8'])

  const fourth = await connectAsHost(t, feed)
  fourth.write(hello(7))
  const four = await served(fourth, 1)
  t.strictSame(four.seqs, ['8'], 'a host with its own cursor is served from it, whatever was acknowledged')
})
