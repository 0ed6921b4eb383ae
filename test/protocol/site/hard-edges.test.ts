import t from 'tap'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import { Federation } from '../support/federation'
import { post, signAs } from '../support/signed-client'
import { injected, postIngest } from '../support/monitoring-stores'
import { makeVmDir } from '../support/vm-files'

// The protocol's hard edges against real `fedvm site run` daemons: malformed signed bodies are bad
// requests naming the field, and idle or half-open connections are closed within the site's
// (here shortened) limits.

t.test('malformed signed bodies: 400 naming the field, never 200 or 500', async (t) => {
  const fed = await Federation.create([
    { id: 'site-a', ip: '127.0.0.91', hosts: [{ id: 'a1', maxVms: 1 }], partners: ['site-b'] },
    { id: 'site-b', ip: '127.0.0.92', hosts: [{ id: 'b1', maxVms: 1 }], partners: ['site-a'] },
  ])
  t.teardown(() => fed.close())
  await fed.start()

  const huge = await signAs(fed, 'site-a', 'site-b', 'migration-request', { vmId: 'vm1', descriptor: { n: 1 } })
  const answer = await post(fed, 'site-b', 'migration-request', Buffer.from(JSON.stringify(huge).replace('"n":1', '"n":1e400')))
  t.match(answer, { status: 400, json: { code: 'bad-request', retryable: false } }, 'the JSON number 1e400')

  const text = await post(fed, 'site-b', 'migration-request', await signAs(fed, 'site-a', 'site-b', 'migration-request', { vmId: 'vm1', descriptor: 'x' }))
  t.match(text, { status: 400, json: { code: 'bad-request', detail: /descriptor/ } }, 'a descriptor that is not an object')

  const proto = await post(fed, 'site-b', 'migration-request', await signAs(fed, 'site-a', 'site-b', 'migration-request', JSON.parse('{"vmId":"vm1","__proto__":{"polluted":true}}')))
  t.match(proto, { status: 400, json: { code: 'bad-request', detail: /^body\.__proto__/ } }, 'a __proto__ member in the body')

  const nested = await post(fed, 'site-b', 'migration-request', await signAs(fed, 'site-a', 'site-b', 'migration-request', JSON.parse('{"vmId":"vm1","descriptor":{"id":"vm1","x":{"__proto__":{}}}}')))
  t.match(nested, { status: 400, json: { detail: /^body\.descriptor\.x\.__proto__/ } }, 'or deeper inside it')

  const fine = await post(fed, 'site-b', 'migration-request', await signAs(fed, 'site-a', 'site-b', 'migration-request', { vmId: 'vm1', descriptor: { id: 'vm1' } }))
  t.match(fine, { status: 200, json: { offers: [{}] } }, 'a well-formed request still gets its offer')
})

t.test('the ingest refuses unsigned batches; idle and half-open connections to every listener are closed within the configured limits', async (t) => {
  const fed = await Federation.create([
    { id: 'site-c', ip: '127.0.0.93', hosts: [{ id: 'c1', maxVms: 1 }], monitoring: { ingest: true, ingestAuth: 'host-key' }, limits: { handshakeTimeoutMs: 500, headersTimeoutMs: 500, idleTimeoutMs: 500, maxConnectionsPerPeer: 400 } },
  ])
  t.teardown(() => fed.close())
  await fed.start()
  const site = fed.site('site-c').config as { listen: string, proxies: Array<{ listen: string }>, monitoring: { ingest: string } }
  const targets = [site.listen, site.proxies[0].listen, site.monitoring.ingest]
  // The forged-monitoring curl against a real site: its ingest takes no unsigned batch.
  const forged = await postIngest(`http://${site.monitoring.ingest}/v1/deliveries`, injected('vm1', 'forged', 1))
  t.match(forged, { status: 401, json: { code: 'unknown-sender' } }, 'an unsigned batch is refused')
  const sockets: Socket[] = []
  t.teardown(() => { for (const s of sockets) s.destroy() })
  const started = Date.now()
  const closed: Array<Promise<void>> = []
  for (const target of targets) {
    const at = target.lastIndexOf(':')
    for (let i = 0; i < 100; i++) {
      const socket = connect(Number(target.slice(at + 1)), target.slice(0, at))
      socket.on('error', () => {})
      socket.resume()
      // Half of them send part of something (a TLS record header, or request headers), half nothing.
      if (i % 2 === 1) socket.once('connect', () => socket.write(target === site.monitoring.ingest ? 'POST /v1/deliveries HTTP/1.1\r\nHo' : Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00])))
      sockets.push(socket)
      closed.push(new Promise((resolve) => socket.once('close', () => resolve())))
    }
  }
  await Promise.all(closed)
  const ms = Date.now() - started
  t.ok(ms < 20_000, `all 300 closed after ${ms} ms (Node's own defaults keep them for minutes)`)
})

t.test('a partner that refuses the Controller for clock skew is named in the answer, not "no destination"', async (t) => {
  const fed = await Federation.create([
    { id: 'site-d', ip: '127.0.0.94', hosts: [{ id: 'd1', maxVms: 1 }], partners: ['site-e'] },
    { id: 'site-e', ip: '127.0.0.95', hosts: [{ id: 'e1', maxVms: 1 }], partners: ['site-d'] },
  ])
  t.teardown(() => fed.close())
  await fed.start('site-e')
  // Site D (its daemon and its CLI) runs 45 s ahead; the accepted window is 30 s.
  const skewed = <T> (run: () => Promise<T>): Promise<T> => {
    const saved = { options: process.env.NODE_OPTIONS, offset: process.env.FEDVM_TEST_CLOCK_OFFSET_MS }
    process.env.NODE_OPTIONS = `${saved.options ?? ''} --require ${join(__dirname, '../../support/clock-offset.cjs')}`.trim()
    process.env.FEDVM_TEST_CLOCK_OFFSET_MS = '45000'
    const restore = () => {
      if (saved.options === undefined) delete process.env.NODE_OPTIONS
      else process.env.NODE_OPTIONS = saved.options
      if (saved.offset === undefined) delete process.env.FEDVM_TEST_CLOCK_OFFSET_MS
      else process.env.FEDVM_TEST_CLOCK_OFFSET_MS = saved.offset
    }
    // The child processes take the environment as it is when they are spawned (synchronously, at the call).
    const running = run()
    restore()
    return running
  }
  await skewed(() => fed.start('site-d'))
  const image = join(fed.root, 'image')
  await makeVmDir(image, { 'disk.img': 4096 })
  t.match((await skewed(() => fed.cli('site-d', 'place', '--vm', 'vm1', '--dir', image))).json, { outcome: 'migrated', destination: 'site-d' }, 'vm1 fills D\'s only host')
  const answer = await skewed(() => fed.cli('site-d', 'migrate', '--vm', 'vm1'))
  t.not(answer.code, 0)
  t.match(answer.json, { code: 'stale-timestamp', detail: /site-e refused the request for clock skew/ })
})
