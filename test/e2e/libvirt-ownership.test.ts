import t from 'tap'
import type { FaultPoint } from '../../protocol/roles/fault-point'
import { runLibvirtOwnership } from '../support/federation/libvirt-ownership-runs'

// The VM is never in two places, with libvirt hosts: the steps around the switchover of the cold
// path (the VM saved at the Source, its files pulled, restored at the Destination). The runner
// (test/support/federation/libvirt-ownership-runs.ts) says what each run checks and how to replay it.

t.setTimeout(290_000)

/** The steps around the switchover: the arrival, the decision, the commit at the Destination, the release at the Source. */
const AROUND_SWITCHOVER: FaultPoint[] = [
  'destination:received', 'source:verified', 'controller:decided', 'destination:committing',
  'destination:committed', 'controller:destination-committed', 'source:releasing',
]

t.test('a SIGKILL around the switchover leaves a libvirt VM defined and running at exactly one host', async (t) => {
  await runLibvirtOwnership(t, { leaveBy: 'save', points: AROUND_SWITCHOVER, ipPrefix: '127.0.0.8' })
})
