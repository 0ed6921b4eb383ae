import t from 'tap'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LibvirtHypervisor } from '../../../host/libvirt/libvirt-hypervisor'
import { decodeHeader, MessageType, Proc, REMOTE_PROGRAM } from '../../../host/libvirt/rpc/protocol'
import { XdrWriter } from '../../../host/libvirt/rpc/xdr'

// A scripted libvirtd on a unix socket: checks LibvirtHypervisor's framing (replies split into
// 1-byte chunks, unrelated messages in between), error replies, a call that never answers, and
// reconnecting after the daemon goes away. The real libvirtd is covered in test/e2e.

type Handler = (proc: number, body: Buffer) => { body: Buffer, error?: false } | { error: true, code: number, message: string } | 'never'

function reply (proc: number, serial: number, status: number, body: Buffer): Buffer {
  const msg = Buffer.alloc(28 + body.length)
  msg.writeUInt32BE(msg.length, 0)
  msg.writeUInt32BE(REMOTE_PROGRAM, 4)
  msg.writeUInt32BE(1, 8)
  msg.writeInt32BE(proc, 12)
  msg.writeInt32BE(MessageType.REPLY, 16)
  msg.writeUInt32BE(serial, 20)
  msg.writeInt32BE(status, 24)
  body.copy(msg, 28)
  return msg
}

async function fakeDaemon (path: string, handler: Handler): Promise<{ server: Server, sockets: Set<Socket>, calls: number[] }> {
  const sockets = new Set<Socket>()
  const calls: number[] = []
  const server = createServer(socket => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    let buf = Buffer.alloc(0)
    socket.on('data', chunk => {
      buf = Buffer.concat([buf, chunk])
      while (buf.length >= 4 && buf.length >= buf.readUInt32BE(0)) {
        const msg = buf.subarray(0, buf.readUInt32BE(0))
        buf = buf.subarray(msg.length)
        const h = decodeHeader(msg)
        calls.push(h.proc)
        const answer = h.proc === Proc.AUTH_LIST ? { body: new XdrWriter().uint(1).int(0).toBuffer() }
          : h.proc === Proc.CONNECT_OPEN || h.proc === Proc.CONNECT_CLOSE ? { body: Buffer.alloc(0) }
            : handler(h.proc, msg.subarray(28))
        if (answer === 'never') continue
        // An event-like message first: it must be ignored.
        socket.write(Buffer.from([0, 0, 0, 28, 0x6b, 0x65, 0x65, 0x70, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0]))
        const out = answer.error === true
          ? reply(h.proc, h.serial, 1, new XdrWriter().int(answer.code).int(10).optionalString(answer.message).toBuffer())
          : reply(h.proc, h.serial, 0, answer.body)
        for (let i = 0; i < out.length; i++) socket.write(out.subarray(i, i + 1))
      }
    })
  })
  await new Promise<void>(resolve => server.listen(path, resolve))
  return { server, sockets, calls }
}

t.test('bulk stats over the wire, reply in 1-byte chunks, errors mapped, reconnect after the daemon restarts', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-rpc-'))
  t.teardown(async () => await rm(dir, { recursive: true, force: true }))
  const path = join(dir, 'libvirt-sock')
  const fixture = await readFile(join(__dirname, '..', 'fixtures', 'running-paused-shutoff.xdr'))
  const handler: Handler = proc => {
    if (proc === Proc.CONNECT_GET_ALL_DOMAIN_STATS) return { body: fixture }
    if (proc === Proc.DOMAIN_LOOKUP_BY_UUID) return { error: true, code: 42, message: 'Domain not found' }
    if (proc === Proc.CONNECT_LIST_ALL_DOMAINS) return 'never'
    return { error: true, code: 1, message: 'internal error' }
  }
  let daemon = await fakeDaemon(path, handler)
  const hv = new LibvirtHypervisor({ socketPath: path })
  t.teardown(async () => { await hv.close(); daemon.server.close() })

  const stats = await hv.getDomainStats()
  t.same(stats.map(s => s.name).sort(), ['fedvm-test-1', 'fedvm-test-2', 'fedvm-test-3'], 'the fixture decoded after byte-by-byte delivery')
  await t.rejects(hv.getDomainDetails('00000000-0000-4000-8000-000000000000'), { code: 'DOMAIN_NOT_FOUND', message: /Domain not found/ })
  await t.rejects(hv.listDomains(AbortSignal.timeout(100)), { code: 'ABORTED' }, 'a call that never answers is given up at the signal')
  t.ok((await hv.getDomainStats()).length === 3, 'the connection still works after a call was given up')
  t.equal(daemon.calls.filter(p => p === Proc.CONNECT_OPEN).length, 1, 'one connection kept for all calls')

  for (const s of daemon.sockets) s.destroy()
  await new Promise<void>(resolve => daemon.server.close(() => resolve()))
  await rm(path, { force: true })
  await t.rejects(hv.getDomainStats(), { code: 'CONNECT_FAILED' }, 'daemon down: a clear error')
  daemon = await fakeDaemon(path, handler)
  t.equal((await hv.getDomainStats()).length, 3, 'daemon back: the next call reconnects')
  t.same(daemon.calls.slice(0, 2), [Proc.AUTH_LIST, Proc.CONNECT_OPEN], 'with a fresh handshake')
})
