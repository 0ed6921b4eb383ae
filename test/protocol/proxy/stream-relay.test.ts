import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { rm } from 'node:fs/promises'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { StreamPark, StreamParker } from '../../../protocol/proxy/stream-relay'
import type { Teardownable } from '../../support/teardownable'
import { identities, sourceProxy, waitFor, waitUntil } from '../../host/libvirt/support/live-pair'

// The relay between a Source's unix socket and a Destination's, through TLS on loopback: every
// byte arrives in order both ways, an end crosses, and a reader that stops stops the writer after
// a bounded amount (the relay reads ahead, but not without limit).

const MiB = 1024 * 1024

async function relay (t: Teardownable, onTarget: (s: Socket) => void): Promise<string> {
  const ids = await identities()
  t.teardown(async () => await rm(ids.dir, { recursive: true, force: true }))
  const token = randomBytes(16).toString('hex')
  const park = new StreamPark(() => token)
  const proxy = await sourceProxy(ids.source, park)
  const targetPath = join(ids.dir, 'target.sock')
  const target: Server = createServer(onTarget)
  await new Promise<void>((resolve) => target.listen(targetPath, resolve))
  const relayPath = join(ids.dir, 'relay.sock')
  await park.listen(token, 'nbd', relayPath)
  const parker = new StreamParker({ url: proxy.url, fingerprint: ids.source.fingerprint, token, channel: 'nbd', clientCert: ids.destination, targetPath })
  t.teardown(() => { parker.close(); park.close(); proxy.server.close(); target.close() })
  return relayPath
}

function sha (chunks: Buffer[]): string {
  const h = createHash('sha256')
  for (const c of chunks) h.update(c)
  return h.digest('hex')
}

t.test('bytes cross in order both ways and an end crosses', async (t) => {
  const up = Array.from({ length: 48 }, () => randomBytes(MiB))
  const down = Array.from({ length: 16 }, () => randomBytes(MiB))
  let received: Buffer[] = []
  let targetEnded = false
  const path = await relay(t, (s) => {
    received = []
    s.on('data', (c: Buffer) => received.push(c))
    s.once('end', () => { targetEnded = true; s.end() })
    for (const c of down) s.write(c)
  })
  const client = connect(path)
  t.teardown(() => client.destroy())
  const back: Buffer[] = []
  let backBytes = 0
  client.on('data', (c: Buffer) => { back.push(c); backBytes += c.length })
  for (const c of up) if (!client.write(c)) await new Promise((resolve) => client.once('drain', resolve))
  await waitFor(() => backBytes >= down.length * MiB, 60_000)
  client.end()
  // The client's end leaves the relay holding what it has not handed over yet: it all arrives first.
  await waitFor(() => targetEnded, 60_000)
  t.equal(sha(received), sha(up), `the ${up.length} MiB sent arrived in order, then the end`)
  t.equal(sha(back), sha(down), `the ${down.length} MiB answered came back in order`)
})

t.test('a target that stops reading stops the writer after a bounded amount', async (t) => {
  let target: Socket | undefined
  const path = await relay(t, (s) => { target = s; s.pause() })
  const client = connect(path)
  t.teardown(() => client.destroy())
  const chunk = randomBytes(MiB)
  let writing = true
  const pump = (async () => {
    while (writing) if (!client.write(chunk)) await new Promise((resolve) => client.once('drain', resolve))
  })()
  // The writer stalls: what it flushed stops growing.
  let flushed = -1
  await waitUntil(async () => {
    const now = client.bytesWritten - client.writableLength
    const still = now === flushed && now > 0
    flushed = now
    return still
  }, 30_000)
  t.ok(flushed > 0 && flushed < 64 * MiB, `the writer stalled after ${(flushed / MiB).toFixed(1)} MiB (kernel buffers, TLS and the relay's 4 MiB per hop)`)
  writing = false
  let drained = 0
  target?.on('data', (c: Buffer) => { drained += c.length })
  target?.resume()
  await waitFor(() => drained >= flushed, 30_000)
  t.ok(drained >= flushed, 'the target reads everything once it reads again')
  client.destroy()
  await pump.catch(() => {})
})
