import t from 'tap'
import { rpcTarget } from '../../../host/libvirt/guest-clock'
import { DomainTimeProc, encodeSetTime } from '../../../host/libvirt/rpc/domain-time'

t.test('virDomainSetTime arguments: the domain, then seconds (hyper), nanoseconds and flags', async (t) => {
  const body = encodeSetTime({ name: 'vm1', uuid: '00112233-4455-6677-8899-aabbccddeeff', id: 7 }, 1_700_000_000_123.5)
  const expected = Buffer.concat([
    Buffer.from([0, 0, 0, 3]), Buffer.from('vm1\0'), // string: length, bytes, padding to 4
    Buffer.from('00112233445566778899aabbccddeeff', 'hex'), Buffer.from([0, 0, 0, 7]),
    Buffer.from('000000006553f100', 'hex'), // 1_700_000_000 s
    Buffer.from([0x07, 0x5c, 0x75, 0xe0]), // 123.5 ms = 123_500_000 ns
    Buffer.from([0, 0, 0, 0]), // flags: set this time (not VIR_DOMAIN_TIME_SYNC)
  ])
  t.same(body.toString('hex'), expected.toString('hex'))
  t.equal(DomainTimeProc.DOMAIN_SET_TIME, 338)
  t.equal(DomainTimeProc.DOMAIN_LOOKUP_BY_NAME, 23)
})

t.test('the socket and URI the clock is set through, from the host\'s libvirt URI', async (t) => {
  t.same(rpcTarget('qemu+unix:///system?socket=/tmp/site-b/run/libvirt-sock'), { socketPath: '/tmp/site-b/run/libvirt-sock', uri: 'qemu:///system' })
  t.same(rpcTarget('qemu:///system'), { socketPath: '/run/libvirt/libvirt-sock', uri: 'qemu:///system' })
})
