import t from 'tap'
import { KpiView } from '../../../agent/engine/kpi-view'
import type { RowFrame } from '../../../protocol/kpi-feed/frames'

// The live view behind /metrics takes rows on arrival and again once stored (or sent again after a
// store that failed): each row counts once; a feed that restarts lower (a new guest database) counts anew.

const row = (seq: number, value: number): RowFrame => ({ v: 1, t: 'row', seq: String(seq), kpi: 'users', ts: 1000 + seq, cols: ['n'], vals: [value] })

t.test('a row seen twice counts once; after a restart lower, rows count again', async (t) => {
  const view = new KpiView()
  for (const r of [row(1, 10), row(2, 20), row(1, 10), row(2, 20), row(3, 30)]) view.record(r)
  t.equal(view.kpis.get('users')!.writes, 3)
  t.equal(view.kpis.get('users')!.values.get('n'), 30)
  view.record(row(2, 99))
  t.equal(view.kpis.get('users')!.values.get('n'), 30, 'a repeat changes nothing')

  view.restartAfter(0n) // a replaced guest database starts at 1
  view.record(row(1, 5))
  t.equal(view.kpis.get('users')!.writes, 4)
  t.equal(view.kpis.get('users')!.values.get('n'), 5)
})
