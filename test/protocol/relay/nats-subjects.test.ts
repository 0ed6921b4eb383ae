import fc from 'fast-check'
import t from 'tap'
import { deliverySubject, siteSubjects, subjectToken, tokenToId, vmOfSubject } from '../../../protocol/relay/nats-subjects'

t.test('subject tokens: one token per id, reversible, distinct ids stay distinct', async (t) => {
  t.equal(subjectToken('web-1'), 'web-1', 'plain ids are their own token')
  t.equal(subjectToken('web.1'), 'web~2E1', '"." would split the subject')
  t.equal(subjectToken('a*b>c d~'), 'a~2Ab~3Ec~20d~7E', 'wildcards, whitespace and the escape character itself are escaped')
  t.equal(subjectToken('ö'), '~C3~B6', 'UTF-8 bytes')
  t.equal(deliverySubject('fedvm.deliveries', 'site.c', 'web.1'), 'fedvm.deliveries.site~2Ec.web~2E1')
  t.equal(siteSubjects('fedvm.deliveries', 'site.c'), 'fedvm.deliveries.site~2Ec.>')
  fc.assert(fc.property(fc.string({ minLength: 1, unit: 'binary' }), (id) => {
    const token = subjectToken(id)
    return /^[A-Za-z0-9_~-]+$/.test(token) && tokenToId(token) === id
  }))
  fc.assert(fc.property(fc.string({ minLength: 1 }), fc.string({ minLength: 1 }), (a, b) => a === b || subjectToken(a) !== subjectToken(b)))
})

t.test('vmOfSubject: only the site\'s own subjects, only canonical tokens', async (t) => {
  t.equal(vmOfSubject('fedvm.deliveries', 'site-c', 'fedvm.deliveries.site-c.web~2E1'), 'web.1')
  t.equal(vmOfSubject('fedvm.deliveries', 'site-c', 'fedvm.deliveries.site-d.web-1'), undefined, 'another site\'s subject')
  t.equal(vmOfSubject('fedvm.deliveries', 'site-c', 'fedvm.deliveries.site-c.web.1'), undefined, 'more than one token')
  t.equal(vmOfSubject('fedvm.deliveries', 'site-c', 'fedvm.deliveries.site-c.'), undefined, 'empty token')
  t.equal(vmOfSubject('fedvm.deliveries', 'site-c', 'fedvm.deliveries.site-c.~41'), undefined, 'an escaped plain character is not canonical')
  t.equal(vmOfSubject('fedvm.deliveries', 'site-c', 'fedvm.deliveries.site-c.~C3'), undefined, 'broken UTF-8')
  t.equal(vmOfSubject('fedvm.deliveries', 'site-c', 'fedvm.deliveries.site-c.a~4'), undefined, 'a cut escape')
})
