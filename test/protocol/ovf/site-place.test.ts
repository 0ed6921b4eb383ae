import t from 'tap'
import Database from 'better-sqlite3'
import { readFileSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ovfToDescriptor } from '../../../protocol/ovf/read-ovf'
import { Federation } from '../support/federation'
import { makeVmDir } from '../support/vm-files'

// `fedvm site place --descriptor` takes the OVF envelope as well; what travels with the VM
// is the descriptor in JSON. Real site daemons on loopback.

const FIXTURE = join(__dirname, 'fixtures', 'web-1.ovf')

t.test('site place --descriptor FILE.ovf: the destination site holds the descriptor the envelope gives', async (t) => {
  const fed = await Federation.create([
    { id: 'site-a', ip: '127.0.0.11', hosts: [{ id: 'a1', maxVms: 0 }], partners: ['site-b'] },
    { id: 'site-b', ip: '127.0.0.12', hosts: [{ id: 'b1', maxVms: 1 }], partners: ['site-a'] },
  ])
  t.teardown(() => fed.close())
  await fed.start()
  const image = join(fed.root, 'image-web-1')
  await makeVmDir(image, { 'disk.img': 64 * 1024, 'domain.xml': 900 })

  const bad = join(fed.root, 'bad.ovf')
  await writeFile(bad, (await readFile(FIXTURE, 'utf8')).replace('ovf:id="web-1"', ''))
  const refused = await fed.cli('site-a', 'place', '--vm', 'web-1', '--dir', image, '--descriptor', bad)
  t.equal(refused.code, 3, 'an invalid descriptor')
  t.match(refused.raw.stderr, /bad\.ovf: Envelope\/VirtualSystem\/@ovf:id: missing/)
  t.same((await fed.cli('site-a', 'status')).json.locations, [], 'nothing was placed')

  const placed = await fed.cli('site-a', 'place', '--vm', 'web-1', '--dir', image, '--descriptor', FIXTURE)
  t.equal(placed.code, 0, placed.raw.stdout + placed.raw.stderr)
  t.match(placed.json, { vm: 'web-1', outcome: 'migrated', destination: 'site-b' })

  const db = new Database(join(fed.site('site-b').dir, 'state', 'site.db'), { readonly: true, fileMustExist: true })
  t.teardown(() => db.close())
  const row = db.prepare('SELECT "descriptor" FROM "locations" WHERE "vm_id" = ?').get('web-1') as { descriptor: string } | undefined
  t.ok(row, 'site-b records the VM')
  t.strictSame(JSON.parse(row?.descriptor ?? 'null'), ovfToDescriptor(readFileSync(FIXTURE, 'utf8')).descriptor)
})
