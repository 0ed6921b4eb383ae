import t from 'tap'
import { originCode, ProtocolError, PROBLEMS } from '../../../protocol/errors'
import { fromProblemDocument, toProblemDocument, wrapDownstream } from '../../../protocol/http/problem'

t.test('problem documents carry a stable code and retryable', async (t) => {
  const doc = toProblemDocument(new ProtocolError('token-expired', 'the transfer token has expired'))
  t.same(doc, { type: 'urn:fedvm:problem:token-expired', title: PROBLEMS['token-expired'].title, status: 410, detail: 'the transfer token has expired', code: 'token-expired', retryable: false })
  const back = fromProblemDocument(doc, 410)
  t.equal(back.code, 'token-expired')
  t.equal(back.retryable, false)
  t.equal(fromProblemDocument({ nonsense: true }, 503).code, 'bad-response', 'an unknown code is never trusted')
})

t.test('a downstream failure keeps its code, never its detail', async (t) => {
  const inner = new ProtocolError('no-room', 'host h1.internal.site-c.example is full')
  const wrapped = toProblemDocument(wrapDownstream(inner, 'initiate-transfer'))
  t.equal(wrapped.code, 'downstream-failed')
  t.equal(wrapped.downstreamCode, 'no-room')
  t.equal(wrapped.retryable, true)
  t.notMatch(JSON.stringify(wrapped), /h1|internal|example/, 'no internal host name leaks')
})

t.test('originCode: the code of the site that failed, however many hops passed it on', async (t) => {
  const failed = new ProtocolError('no-room', 'the offered host has no room left')
  t.equal(originCode(failed), 'no-room', 'a failure of this site is its own code')
  // Two Intermediaries: each wraps what came back, and each hop travels as a problem document.
  const oneHop = fromProblemDocument(toProblemDocument(wrapDownstream(failed, 'transfer-commit')), 502)
  const twoHops = fromProblemDocument(toProblemDocument(wrapDownstream(oneHop, 'transfer-commit')), 502)
  t.equal(twoHops.code, 'downstream-failed')
  t.equal(originCode(twoHops), 'no-room')
  t.equal(originCode(new ProtocolError('downstream-failed', 'an older partner named no code')), 'downstream-failed', 'no code further along: the wrapper\'s own')
  const unreachable = wrapDownstream(new ProtocolError('partner-unreachable', 'no answer within 2000 ms'), 'migration-progress')
  t.equal(originCode(unreachable), 'partner-unreachable', 'an unreachable partner is not a failure further along')
})

t.test('a partner\'s refused list survives the wire; malformed items are dropped', async (t) => {
  const err = fromProblemDocument({ code: 'bad-request', detail: 'd', retryable: false, refused: [
    { index: 1, id: 'b', code: 'bad-request', retryable: false, detail: 'deliveries[1].to: ahead' },
    { index: 2, code: 'unknown-vm', retryable: true },
    { index: -1, code: 'bad-request' }, { index: 1.5, code: 'bad-request' }, { index: 3, code: 'no-such-code' }, 'x', null,
  ] }, 400)
  t.same(err.refused, [
    { index: 1, id: 'b', code: 'bad-request', retryable: false, detail: 'deliveries[1].to: ahead' },
    { index: 2, code: 'unknown-vm', retryable: true, detail: '' },
  ])
  t.equal(fromProblemDocument({ code: 'bad-request', detail: 'd' }, 400).refused, undefined, 'none sent: none')
})
