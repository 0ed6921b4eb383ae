import t from 'tap'
import Database from 'better-sqlite3'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PrimaryStore } from '../../../../protocol/primary/primary-store'
import { KpiCache } from '../../../../protocol/site/dashboard/kpi-cache'

t.test('the KPI cache reads the store again only after another connection stored something', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fedvm-dash-cache-'))
  const writer = new Database(join(dir, 'monitoring.db'))
  writer.pragma('journal_mode = WAL')
  const store = new PrimaryStore(writer)
  const reader = new Database(join(dir, 'monitoring.db'), { readonly: true })
  t.teardown(() => { reader.close(); writer.close(); rmSync(dir, { recursive: true, force: true }) })
  let computed = 0
  const cache = new KpiCache(reader, async () => {
    computed++
    const n = reader.prepare('SELECT count(*) FROM "deliveries"').pluck().get() as number
    return [{ metric: 'm', selector: 'mean', opened: 0, withheld: 0, points: [[0, n]] }]
  })
  const add = (id: string): void => { store.insert([{ id, vm: 'vm1', metric: 'm', format: 'processed', function: 'mean', from: 0, to: 1, value: 1 }]) }
  add('d1')
  t.same((await cache.series('vm1'))[0].points, [[0, 1]])
  t.same((await cache.series('vm1'))[0].points, [[0, 1]])
  t.equal(computed, 1, 'nothing stored in between: the cached series')
  add('d2')
  t.same((await cache.series('vm1'))[0].points, [[0, 2]], 'a commit of the writer: read again')
  t.equal(computed, 2)
  cache.forget('vm1')
  await cache.series('vm1')
  t.equal(computed, 3, 'a forgotten VM is read again')
  await cache.series('vm2')
  t.equal(cache.size, 2, 'two VMs asked for since the last commit')
  add('d3')
  await cache.series('vm2')
  t.equal(cache.size, 1, 'a commit drops every stale entry, also of a VM nobody asks for again')
})
