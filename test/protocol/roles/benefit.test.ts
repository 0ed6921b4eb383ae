import t from 'tap'
import { rankCandidates, type Candidate } from '../../../protocol/roles/benefit'

// The order README's "Where a migration goes" promises: own hosts first, then partners in
// policy.prefer order, then fewer delegations, then more free room.

const offer = (via: string, depth: number, free: number): Candidate => ({ via, offer: { ref: `${via}/${depth}/${free}`, sealKey: '', tlsFingerprint: '', depth, free } })
const order = (candidates: Candidate[], prefer: string[]): string[] => rankCandidates(candidates, 'site-a', prefer).map((c) => c.offer.ref)

t.test('own hosts first, then prefer, then fewer delegations, then more room', async (t) => {
  t.same(order([offer('site-b', 0, 50), offer('site-a', 0, 1), offer('site-c', 0, 99)], []), ['site-a/0/1', 'site-c/0/99', 'site-b/0/50'],
    'an own host with one slot beats partners with many; among partners more room first')
  t.same(order([offer('site-c', 0, 99), offer('site-b', 2, 1), offer('site-a', 0, 1)], ['site-b']), ['site-a/0/1', 'site-b/2/1', 'site-c/0/99'],
    'a preferred partner beats an unpreferred one, however far and full')
  t.same(order([offer('site-c', 0, 1), offer('site-b', 0, 1)], ['site-b', 'site-c']), ['site-b/0/1', 'site-c/0/1'], 'prefer\'s order')
  t.same(order([offer('site-b', 1, 99), offer('site-b', 0, 1)], []), ['site-b/0/1', 'site-b/1/99'], 'fewer delegations before more room')
})

t.test('own hosts stay first however many partners prefer lists', async (t) => {
  const prefer = Array.from({ length: 30 }, (_, i) => `site-p${i}`)
  t.same(order([offer('site-p0', 0, 99), offer('site-a', 0, 1)], prefer), ['site-a/0/1', 'site-p0/0/99'])
})
