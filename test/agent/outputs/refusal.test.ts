import t from 'tap'
import { judgeRefusal } from '../../../agent/outputs/refusal'

// What the agent does with a batch a receiver did not acknowledge, case by case.

const problem = (code: string, retryable: boolean, extra: Record<string, unknown> = {}) => ({ type: `urn:fedvm:problem:${code}`, code, retryable, detail: `${code} detail`, ...extra })

t.test('when or who, not what: retried', async (t) => {
  for (const status of [500, 502, 503, 504, 408, 429, 403, 404, 409]) {
    t.equal(judgeRefusal({ status }, 3).kind, 'retry', `HTTP ${status}`)
  }
  t.match(judgeRefusal({ status: 403, problem: problem('not-permitted', false) }, 1), { kind: 'retry', reason: 'HTTP 403 not-permitted: not-permitted detail' }, 'the site\'s records may not place the VM here yet')
  t.match(judgeRefusal({ status: 400, problem: problem('bad-request', true) }, 1), { kind: 'retry' }, 'a 4xx the receiver marks retryable')
  t.match(judgeRefusal({ status: 302 }, 1), { kind: 'retry', reason: 'HTTP 302' }, 'a redirect says nothing about the batch')
})

t.test('401: the site refuses this host\'s signature, whatever the batch holds or says', async (t) => {
  t.same(judgeRefusal({ status: 401, problem: problem('unknown-sender', false) }, 3), { kind: 'unauthenticated', reason: { status: 401, code: 'unknown-sender', detail: 'unknown-sender detail' } }, 'a host key the site does not know yet')
  t.same(judgeRefusal({ status: 401 }, 1), { kind: 'unauthenticated', reason: { status: 401, code: 'http-401', detail: 'HTTP 401' } }, 'no problem document')
  t.match(judgeRefusal({ status: 401, problem: problem('bad-signature', true, { refused: [{ index: 0, detail: 'x' }] }) }, 1), { kind: 'unauthenticated' }, 'a list or retryable changes nothing: the signature is refused, not a delivery')
})

t.test('for good, naming the deliveries: those only, each with its own reason', async (t) => {
  const verdict = judgeRefusal({ status: 400, problem: problem('bad-request', false, { refused: [{ index: 1, id: 'b', code: 'bad-request', retryable: false, detail: 'deliveries[1].to: ahead' }, { index: 3, detail: 'deliveries[3].value: bad' }] }) }, 4)
  t.same(verdict, { kind: 'refused-items', items: [
    { index: 1, reason: { status: 400, code: 'bad-request', detail: 'deliveries[1].to: ahead' }, later: false },
    { index: 3, reason: { status: 400, code: 'bad-request', detail: 'deliveries[3].value: bad' }, later: false },
  ] })
})

t.test('for now, naming the deliveries: those retried, the others sent again at once', async (t) => {
  const verdict = judgeRefusal({ status: 404, problem: problem('unknown-vm', false, { refused: [{ index: 0, id: 'a', code: 'unknown-vm', retryable: false, detail: 'deliveries[0].vm: this site is not responsible for gone' }] }) }, 3)
  t.same(verdict, { kind: 'refused-items', items: [{ index: 0, reason: { status: 404, code: 'unknown-vm', detail: 'deliveries[0].vm: this site is not responsible for gone' }, later: true }] }, 'where the VM is: for now')
  const mixed = judgeRefusal({ status: 403, problem: problem('not-permitted', false, { refused: [{ index: 0, code: 'not-permitted', detail: 'x' }, { index: 1, code: 'bad-request', retryable: true, detail: 'y' }, { index: 2, code: 'bad-request', detail: 'z' }] }) }, 3)
  t.same(mixed.kind === 'refused-items' && mixed.items.map((i) => i.later), [true, true, false], 'a listed delivery marked retryable is for now too; others for good')
  t.match(judgeRefusal({ status: 400, problem: problem('bad-request', true, { refused: [{ index: 0, detail: 'x' }] }) }, 1), { kind: 'retry' }, 'a refusal marked retryable as a whole: the batch is retried')
})

t.test('for good, naming nothing usable: the batch as a whole', async (t) => {
  t.same(judgeRefusal({ status: 413, problem: problem('request-too-large', false) }, 2), { kind: 'refused-batch', reason: { status: 413, code: 'request-too-large', detail: 'request-too-large detail' } })
  t.same(judgeRefusal({ status: 422 }, 2), { kind: 'refused-batch', reason: { status: 422, code: 'http-422', detail: 'HTTP 422' } }, 'no problem document: the status alone')
  t.match(judgeRefusal({ status: 400, problem: problem('bad-request', false, { refused: [{ index: 5, detail: 'x' }, { index: -1 }, { index: 'a' }] }) }, 2), { kind: 'refused-batch' }, 'places outside the batch are ignored')
  t.match(judgeRefusal({ status: 400, problem: 'not an object' }, 1), { kind: 'refused-batch', reason: { code: 'http-400' } })
})

t.test('the receiver\'s words reach the log as one bounded line', async (t) => {
  const verdict = judgeRefusal({ status: 400, problem: problem('bad-request', false, { detail: `first\nsecond${'x'.repeat(5000)}` }) }, 1)
  t.equal(verdict.kind, 'refused-batch')
  if (verdict.kind !== 'refused-batch') return
  t.notMatch(verdict.reason.detail, /\n/)
  t.equal(verdict.reason.detail.length, 1000)
})
