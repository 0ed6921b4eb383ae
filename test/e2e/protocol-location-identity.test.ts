import t from 'tap'
import Database from 'better-sqlite3'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { normalizeFingerprint } from '../../protocol/crypto/tls-certificate'
import { Federation } from '../protocol/support/federation'
import { post, proxyGet, signAs } from '../protocol/support/signed-client'
import { digestsOf, makeVmDir } from '../protocol/support/vm-files'

/** Every form a 32-byte key or digest can take in a log, a JSON column or a file. */
function formsOf (bytes: Buffer): string[] {
  const hex = bytes.toString('hex')
  return [hex, hex.toUpperCase(), hex.toUpperCase().match(/../g)!.join(':'), hex.match(/../g)!.join(':'), bytes.toString('base64'), bytes.toString('base64url')]
}

/** Every file under a directory, concatenated as bytes (latin1: a string in a binary SQLite page or WAL still shows). */
async function everything (dir: string): Promise<string> {
  const parts: string[] = []
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) parts.push((await readFile(join(entry.parentPath, entry.name))).toString('latin1'))
  }
  return parts.join('\n')
}

// A (primary, one host) → B (delegates, no hosts) → C (one host), and back. A is the Source of the
// first migration and the Destination of the second. Afterwards nothing A wrote (its log, its state
// database, any file of its own) holds a stable identifier of C: its site certificate's fingerprint,
// its sealing and signing keys, its addresses, its id. The Source's token was bound to a certificate
// C's proxy made for that transfer, and a token presented from any other certificate (C's own
// site certificate included) is refused with a problem document.
t.test('the Source and the Controller learn no stable identifier of the Destination', async (t) => {
  const fed = await Federation.create([
    { id: 'site-a', ip: '127.0.0.61', hosts: [{ id: 'a1', maxVms: 1 }], partners: ['site-b'], policy: { delegate: true, expose: 'all' } },
    { id: 'site-b', ip: '127.0.0.62', partners: ['site-a', 'site-c'], policy: { delegate: true, expose: 'all' } },
    { id: 'site-c', ip: '127.0.0.63', hosts: [{ id: 'c1', maxVms: 1 }], partners: ['site-b'] },
  ])
  t.teardown(() => fed.close())
  await fed.start()
  const image = join(fed.root, 'image')
  const digests = await makeVmDir(image, { 'disk.img': 2 * 1024 * 1024 + 4321, 'domain.xml': 600 })
  const cli: string[] = []
  const run = async (id: string, sub: string, ...args: string[]): Promise<any> => {
    const answer = await fed.cli(id, sub, ...args)
    cli.push(answer.raw.stdout, answer.raw.stderr)
    t.equal(answer.code, 0, `${id} ${sub} ${args.join(' ')}: ${answer.raw.stdout}${answer.raw.stderr}`)
    return answer.json
  }

  await run('site-a', 'place', '--vm', 'vm1', '--dir', image)
  t.same(await digestsOf(join(fed.vmDir('site-a', 'a1'), 'vm1')), digests, 'vm1 starts on A\'s host')
  const sourceTokens = (): string[] => {
    const db = new Database(join(fed.site('site-a').dir, 'state', 'site.db'), { readonly: true })
    try {
      return (db.prepare('SELECT "bound_to" FROM "tokens" WHERE "role" = \'source\' AND "vm_id" = \'vm1\'').all() as Array<{ bound_to: string }>).map((r) => r.bound_to)
    } finally { db.close() }
  }
  const proxyPeers = (): string[] => fed.daemon('site-a').events().filter((e) => e.event === 'proxy-connection').map((e) => String(e.peer))
  const placing = { tokens: sourceTokens().length, peers: proxyPeers().length }
  t.match(await run('site-a', 'migrate', '--vm', 'vm1', '--to', 'site-b'), { outcome: 'migrated', destination: 'site-b', digestsAgree: true })
  t.same(await digestsOf(join(fed.vmDir('site-c', 'c1'), 'vm1')), digests, 'A → B → C: vm1 is on C\'s host, byte-exact')

  const a = fed.site('site-a')
  const c = fed.site('site-c')
  const cFingerprint = normalizeFingerprint(c.keys.tlsFingerprint)!
  // What A's proxy bound the migration's token to, and whom it served: one certificate, not C's.
  const boundTo = sourceTokens().slice(placing.tokens)
  t.equal(boundTo.length, 1, 'A prepared one source token for the migration')
  t.not(boundTo[0], cFingerprint, 'bound to a certificate other than C\'s site certificate')
  const peers = proxyPeers().slice(placing.peers)
  t.ok(peers.length > 0 && peers.every((peer) => peer === boundTo[0]), 'A\'s proxy served that certificate only')

  // A token C's proxy prepared for one of A's offers, presented from other certificates: B stands
  // in for the Controller (it delegated vm1 to C, so C takes Forced migration from it).
  const request = await post(fed, 'site-a', 'migration-request', await signAs(fed, 'site-b', 'site-a', 'migration-request', { vmId: 'vm1', descriptor: {} }))
  const offer = request.json.offers?.[0]
  t.ok(offer !== undefined && normalizeFingerprint(offer.tlsFingerprint) !== normalizeFingerprint(a.keys.tlsFingerprint) && offer.sealKey !== a.keys.sealPublicKey, `A's offer carries a transfer key, not A's site keys: ${JSON.stringify(request.json)}`)
  const prepared = await post(fed, 'site-c', 'forced-migration', await signAs(fed, 'site-b', 'site-c', 'forced-migration', { vmId: 'vm1', mode: 'prepare', destination: { sealKey: offer.sealKey, tlsFingerprint: offer.tlsFingerprint } }))
  t.equal(prepared.status, 200, `C prepared vm1 for A's offer: ${JSON.stringify(prepared.json)}`)
  const cProxy = `https://${(c.config as { proxies: Array<{ listen: string }> }).proxies[0].listen}`
  for (const [who, keys] of [['A\'s site certificate (the offer\'s site)', join(a.dir, 'keys')], ['B\'s site certificate', join(fed.site('site-b').dir, 'keys')]]) {
    const refused = await proxyGet(cProxy, c.keys.tlsFingerprint, '/v1/transfer/manifest', prepared.json.token, keys)
    t.equal(refused.status, 403, `${who}: 403`)
    t.match(refused.json, { code: 'token-foreign', type: 'urn:fedvm:problem:token-foreign' }, `${who}: a problem document, token-foreign`)
  }
  const cancelled = await post(fed, 'site-c', 'transfer-cancel', await signAs(fed, 'site-b', 'site-c', 'transfer-cancel', { vmId: 'vm1', token: prepared.json.token }))
  t.match(cancelled.json, { state: 'cancelled' }, 'the prepared transfer is cancelled: vm1 runs on at C')

  t.match(await run('site-a', 'migrate', '--vm', 'vm1', '--to', 'a1'), { outcome: 'migrated', destination: 'site-a', digestsAgree: true })
  t.same(await digestsOf(join(fed.vmDir('site-a', 'a1'), 'vm1')), digests, 'and back: vm1 is on A\'s host again, byte-exact')
  t.match(await run('site-a', 'migrate', '--vm', 'vm1', '--to', 'site-b'), { outcome: 'migrated', destination: 'site-b' })
  t.same(await digestsOf(join(fed.vmDir('site-c', 'c1'), 'vm1')), digests, 'and to C once more')
  const bound = sourceTokens().slice(placing.tokens)
  t.equal(bound.length, 2, 'A prepared a second source token')
  t.ok(bound[1] !== boundTo[0] && bound[1] !== cFingerprint, 'the second transfer to C was bound to another certificate than the first (no key links the two)')
  t.match(await run('site-a', 'migrate', '--vm', 'vm1', '--to', 'a1'), { outcome: 'migrated', destination: 'site-a' })

  // C's stable identifiers, in every form they could be written in.
  const cConfig = c.config as { listen: string, proxies: Array<{ listen: string }> }
  const stable: Array<[string, string]> = [
    ...formsOf(Buffer.from(cFingerprint.replace(/:/g, ''), 'hex')).map((form): [string, string] => ['C\'s certificate fingerprint', form]),
    ...formsOf(Buffer.from(c.keys.sealPublicKey, 'base64')).map((form): [string, string] => ['C\'s sealing key', form]),
    ...formsOf(Buffer.from(c.keys.publicKey, 'base64')).map((form): [string, string] => ['C\'s signing key', form]),
    ...[cConfig.listen, ...cConfig.proxies.map((p) => p.listen)].map((address): [string, string] => ['C\'s address', address]),
    ['C\'s id', 'site-c'],
  ]
  const aKnows = [fed.daemon('site-a').stderr, ...cli, await everything(a.dir)].join('\n')
  t.ok(aKnows.includes(boundTo[0]), 'the check reads what A wrote (the transfer certificate\'s fingerprint is there)')
  for (const [what, form] of stable) t.notOk(aKnows.includes(form), `A never wrote ${what} (${form})`)
})
