import t from 'tap'
import { DowntimeRamp, RAMP_STEP_MS, RAMP_STEPS, rampAllowedFor } from '../../../host/libvirt/downtime-ramp'

const disks = { phase: 'disks', iteration: 0 } as const
const pass = (iteration: number): { phase: 'memory', iteration: number } => ({ phase: 'memory', iteration })

t.test('small during the disk copy and the first memory pass, doubling every step from the second pass, the maximum after the last', async (t) => {
  const ramp = new DowntimeRamp({ maxDowntimeMs: 300, startedAtMs: 1000, fullByMs: 60_000 })
  t.equal(ramp.startLimitMs, 5, '300 ms / 2^6, rounded')
  t.equal(ramp.limitAt(1000), 5, 'before any statistics')
  t.equal(ramp.limitAt(3000, disks), 5)
  t.equal(ramp.limitAt(9000, pass(1)), 5, 'the first pass is not hurried, however long it takes')
  const from = 9500
  t.equal(ramp.limitAt(from, pass(2)), 5, 'the second pass starts at the start limit')
  const seen: number[] = []
  for (let ms = from; ms <= from + RAMP_STEPS * RAMP_STEP_MS + 50; ms += 50) seen.push(ramp.limitAt(ms, pass(3)))
  t.same(seen, [5, 5, 9, 9, 19, 19, 38, 38, 75, 75, 150, 150, 300, 300], 'doubles every 100 ms, reaching the maximum 600 ms after the first pass ended')
  t.equal(ramp.durationMs, 600)
  t.ok(seen.every((v, i) => i === 0 || v >= seen[i - 1]), 'never falls')
})

t.test('at the maximum by fullByMs even if no statistics showed a second pass', async (t) => {
  const ramp = new DowntimeRamp({ maxDowntimeMs: 300, startedAtMs: 0, fullByMs: 30_000 })
  t.equal(ramp.limitAt(29_999, pass(1)), 5)
  t.equal(ramp.limitAt(30_000, pass(1)), 300)
  t.equal(ramp.limitAt(30_000), 300, 'also without statistics (a failed read)')
})

t.test('the step counts from the pass seen first, even when the poll misses pass 2', async (t) => {
  const ramp = new DowntimeRamp({ maxDowntimeMs: 300, startedAtMs: 0, fullByMs: 60_000 })
  t.equal(ramp.limitAt(2000, pass(7)), 5)
  t.equal(ramp.limitAt(2100, pass(9)), 9)
  t.equal(ramp.limitAt(2600, pass(1)), 300, 'a later read does not restart it')
})

t.test('a small maximum never goes below 1 ms nor above the maximum', async (t) => {
  const ramp = new DowntimeRamp({ maxDowntimeMs: 20, startedAtMs: 0, fullByMs: 60_000 })
  t.equal(ramp.startLimitMs, 1)
  const seen = [0, 100, 200, 300, 400, 500, 600].map((ms) => ramp.limitAt(ms, pass(2)))
  t.same(seen, [1, 1, 1, 3, 5, 10, 20])
})

t.test('only a KVM domain may ramp, by its XML\'s root element', async (t) => {
  t.ok(rampAllowedFor("<domain type='kvm' id='3'>\n  <name>vm</name>\n</domain>"), 'type=\'kvm\'')
  t.ok(rampAllowedFor('<?xml version="1.0"?>\n<domain id="3" type="kvm"><name>vm</name></domain>'), 'double quotes, after an XML declaration and another attribute')
  t.notOk(rampAllowedFor("<domain type='qemu'>\n  <name>kvm</name>\n</domain>"), 'type=\'qemu\' (TCG), even with kvm elsewhere')
  t.notOk(rampAllowedFor("<!-- type='kvm' -->\n<domain type='qemu'/>"), 'not from a comment')
})
