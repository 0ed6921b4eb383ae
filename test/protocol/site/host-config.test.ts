import t from 'tap'
import { parseSiteConfig } from '../../../protocol/site/config'

// A site's hosts: plain VM directories, or VMs on a libvirt connection with memory and vCPUs to place by.
const base = (hosts: unknown[]): Record<string, unknown> => ({
  id: 'site-a', listen: '127.0.0.1:7001', keys: 'keys', hosts, proxies: [{ listen: '127.0.0.1:7101' }], stateDir: 'state',
})

t.test('a host with a libvirt connection', async (t) => {
  const config = parseSiteConfig(base([
    { id: 'h1', vmDir: 'vms', maxVms: 8, libvirt: { uri: 'qemu+unix:///system?socket=/run/x/libvirt-sock', leaveBy: 'shutdown' }, memoryMiB: 4096, vcpus: 4 },
    { id: 'h2', vmDir: '/srv/vms', maxVms: 2, libvirt: { uri: 'qemu:///system' } },
    { id: 'd1', vmDir: 'plain', maxVms: 1 },
    { id: 'h3', vmDir: 'vms3', maxVms: 2, libvirt: { uri: 'qemu:///system', maxDowntimeMs: 150, completionTimeoutMs: 600000, migrationBandwidthMiBs: 100, downtimeRamp: true } },
  ]), '/etc/fedvm/site.json')
  t.same(config.hosts[0], { id: 'h1', vmDir: '/etc/fedvm/vms', maxVms: 8, libvirt: { uri: 'qemu+unix:///system?socket=/run/x/libvirt-sock', leaveBy: 'shutdown', maxDowntimeMs: 300, downtimeRamp: false }, memoryMiB: 4096, vcpus: 4 })
  t.same(config.hosts[1], { id: 'h2', vmDir: '/srv/vms', maxVms: 2, libvirt: { uri: 'qemu:///system', leaveBy: 'live', maxDowntimeMs: 300, downtimeRamp: false } }, 'leaveBy defaults to live, its max downtime to 300 ms without a ramp (the completion timeout by size); memory and vCPUs to the machine\'s')
  t.same(config.hosts[2], { id: 'd1', vmDir: '/etc/fedvm/plain', maxVms: 1 }, 'without libvirt: a directory host')
  t.same(config.hosts[3].libvirt, { uri: 'qemu:///system', leaveBy: 'live', maxDowntimeMs: 150, completionTimeoutMs: 600000, migrationBandwidthMiBs: 100, downtimeRamp: true }, 'a live migration\'s bounds and its downtime ramp, as given (no bandwidth cap unless set)')
})

t.test('bad host values are refused, naming the field', async (t) => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['libvirt not an object', { libvirt: 'qemu:///system' }, /^hosts\[0\]\.libvirt: must be an object/],
    ['no uri', { libvirt: {} }, /^hosts\[0\]\.libvirt\.uri: must be a non-empty string/],
    ['not a uri', { libvirt: { uri: '/run/libvirt/libvirt-sock' } }, /^hosts\[0\]\.libvirt\.uri: .* is not a libvirt URI/],
    ['leaveBy', { libvirt: { uri: 'qemu:///system', leaveBy: 'migrate' } }, /^hosts\[0\]\.libvirt\.leaveBy: must be "live", "save" or "shutdown"/],
    ['maxDowntimeMs', { libvirt: { uri: 'qemu:///system', maxDowntimeMs: 0 } }, /^hosts\[0\]\.libvirt\.maxDowntimeMs: must be an integer ≥ 1/],
    ['completionTimeoutMs', { libvirt: { uri: 'qemu:///system', completionTimeoutMs: 'soon' } }, /^hosts\[0\]\.libvirt\.completionTimeoutMs: must be an integer ≥ 1/],
    ['migrationBandwidthMiBs zero', { libvirt: { uri: 'qemu:///system', migrationBandwidthMiBs: 0 } }, /^hosts\[0\]\.libvirt\.migrationBandwidthMiBs: must be an integer of MiB\/s from 1 to 8796093022207/],
    ['migrationBandwidthMiBs fraction', { libvirt: { uri: 'qemu:///system', migrationBandwidthMiBs: 2.5 } }, /^hosts\[0\]\.libvirt\.migrationBandwidthMiBs: must be an integer of MiB\/s/],
    ['migrationBandwidthMiBs beyond libvirt\'s', { libvirt: { uri: 'qemu:///system', migrationBandwidthMiBs: 2 ** 43 } }, /^hosts\[0\]\.libvirt\.migrationBandwidthMiBs: must be an integer of MiB\/s/],
    ['migrationBandwidthMiBs a string', { libvirt: { uri: 'qemu:///system', migrationBandwidthMiBs: '10M' } }, /^hosts\[0\]\.libvirt\.migrationBandwidthMiBs: must be an integer of MiB\/s/],
    ['downtimeRamp a string', { libvirt: { uri: 'qemu:///system', downtimeRamp: 'yes' } }, /^hosts\[0\]\.libvirt\.downtimeRamp: must be true or false/],
    ['downtimeRamp a number', { libvirt: { uri: 'qemu:///system', downtimeRamp: 1 } }, /^hosts\[0\]\.libvirt\.downtimeRamp: must be true or false/],
    ['unknown libvirt key', { libvirt: { uri: 'qemu:///system', socket: '/x' } }, /^hosts\[0\]\.libvirt\.socket: is not a known setting/],
    ['memory', { libvirt: { uri: 'qemu:///system' }, memoryMiB: -1 }, /^hosts\[0\]\.memoryMiB: must be an integer/],
    ['vcpus', { libvirt: { uri: 'qemu:///system' }, vcpus: 1.5 }, /^hosts\[0\]\.vcpus: must be an integer/],
    ['memory on a directory host', { memoryMiB: 512 }, /^hosts\[0\]\.memoryMiB: only a host with a libvirt connection/],
  ]
  for (const [name, extra, error] of cases) {
    t.throws(() => parseSiteConfig(base([{ id: 'h1', vmDir: 'vms', maxVms: 1, ...extra }]), '/etc/fedvm/site.json'), error, name)
  }
})
