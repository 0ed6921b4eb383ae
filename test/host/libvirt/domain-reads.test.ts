import t from 'tap'
import { decodeNodeInfo, decodeState } from '../../../host/libvirt/rpc/domain-reads'
import { XdrWriter } from '../../../host/libvirt/rpc/xdr'

// The pure parts of the VM host's reads over libvirt's remote protocol (the e2e tests
// test/e2e/libvirt-vm-host.test.ts and libvirt-site-migration.test.ts run them on a real libvirtd).

t.test('domain states as virsh domstate words them', async (t) => {
  const state = (n: number): string => decodeState(new XdrWriter().int(n).int(0).toBuffer())
  t.same([0, 1, 2, 3, 4, 5, 6, 7].map(state), ['no state', 'running', 'idle', 'paused', 'in shutdown', 'shut off', 'crashed', 'pmsuspended'])
  t.equal(state(99), 'no state', 'a state this libvirt does not know yet')
})

t.test('node info: memory (KiB, rounded down to MiB) and CPUs', async (t) => {
  const w = new XdrWriter()
  for (const c of Buffer.from('x86_64'.padEnd(32, '\0'))) w.int(c) // char model[32]: one XDR int per char
  const body = Buffer.concat([w.toBuffer(), Buffer.from([0, 0, 0, 0, 0, 0x3d, 0x09, 0x00]), new XdrWriter().int(8).int(2400).int(1).int(1).int(4).int(2).toBuffer()])
  t.same(decodeNodeInfo(body), { memoryMiB: Math.floor(0x3d0900 / 1024), vcpus: 8 })
})
