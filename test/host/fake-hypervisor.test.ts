import t from 'tap'
import { FakeHypervisor } from '../../host/fake/fake-hypervisor'
import { hypervisorConformance } from './hypervisor-conformance'
import { runningStats } from './support/sample-stats'

// The fake runs the same conformance suite as the real libvirt (test/e2e/libvirt-metrics.test.ts).
t.test('FakeHypervisor conforms to the Hypervisor contract', async t => {
  const hv = new FakeHypervisor()
  const running = hv.define(runningStats('vm-running', '11111111-1111-4111-8111-111111111111'))
  const inactive = hv.define(runningStats('vm-off', '22222222-2222-4222-8222-222222222222'))
  hv.stop(inactive.uuid)
  await hypervisorConformance(t as never, {
    hypervisor: hv,
    running,
    inactive,
    restartDaemon: async () => { hv.down = true; hv.down = false }
  })
})
