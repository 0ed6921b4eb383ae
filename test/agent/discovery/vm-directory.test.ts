import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { VmDirectory } from '../../../agent/discovery/vm-directory'
import { kpiChannelSocket } from '../../../agent/discovery/domain-channel'

// A VM directory as host/vm-folder/libvirt-host.ts lays it out, on a real temp folder.

const domainXml = (name: string, channels: string) => `<domain type='qemu'>
  <name>${name}</name>
  <devices>
    <disk type='file' device='disk'><source file='/vms/${name}/disk.qcow2'/><target dev='vda' bus='virtio'/></disk>
${channels}
  </devices>
</domain>`
const kpiChannel = (path: string, quote = "'") => `    <channel type=${quote}unix${quote}>
      <source mode=${quote}bind${quote} path=${quote}${path}${quote}/>
      <target type=${quote}virtio${quote} name=${quote}org.fedvm.kpi.0${quote}/>
    </channel>`

t.test('the KPI channel socket from domain XML', async (t) => {
  t.equal(kpiChannelSocket(domainXml('a', kpiChannel('/vms/a/kpi.sock'))), '/vms/a/kpi.sock')
  t.equal(kpiChannelSocket(domainXml('a', kpiChannel('/vms/a/k&amp;pi.sock', '"'))), '/vms/a/k&pi.sock', 'either quote style, entities decoded')
  const agentChannel = `    <channel type='unix'><source mode='bind' path='/vms/a/qga.sock'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>`
  t.equal(kpiChannelSocket(domainXml('a', agentChannel + '\n' + kpiChannel('/vms/a/kpi.sock'))), '/vms/a/kpi.sock', 'other channels are skipped')
  t.equal(kpiChannelSocket(domainXml('a', agentChannel)), undefined, 'no KPI channel')
  t.equal(kpiChannelSocket(domainXml('a', kpiChannel('/x').replace("mode='bind'", "mode='connect'"))), undefined, 'QEMU as the client: nothing to connect to')
  t.equal(kpiChannelSocket(domainXml('a', `<channel type='pty'><target type='virtio' name='org.fedvm.kpi.0'/></channel>`)), undefined, 'not a unix channel')
})

t.test('VM folders: book-keeping folders and folders without a descriptor are not VMs', async (t) => {
  const vmDir = t.testdir()
  const vm = async (id: string, files: Record<string, string>) => {
    await mkdir(join(vmDir, id), { recursive: true })
    for (const [name, text] of Object.entries(files)) await writeFile(join(vmDir, id, name), text)
  }
  await vm('web-1', { 'descriptor.json': '{"id":"web-1"}', 'domain.xml': domainXml('web-1', kpiChannel(join(vmDir, 'web-1', 'kpi.sock'))) })
  await vm('db-1', { 'descriptor.json': '{"id":"db-1"}' })
  await vm('half', { 'domain.xml': domainXml('half', '') })
  await vm('.incoming/web-2', { 'descriptor.json': '{}', 'domain.xml': domainXml('web-2', '') })
  await vm('.leaving', {})
  await vm('.confirming', {})
  await writeFile(join(vmDir, 'stray-file'), '')

  const found = await new VmDirectory(vmDir).scan()
  t.strictSame(found.map((v) => v.id), ['db-1', 'web-1'])
  t.strictSame(found[1], {
    id: 'web-1',
    descriptorFile: join(vmDir, 'web-1', 'descriptor.json'),
    descriptorText: '{"id":"web-1"}',
    domain: 'web-1',
    feedSocket: join(vmDir, 'web-1', 'kpi.sock'),
    hasDomainXml: true,
  })
  t.strictSame({ domain: found[0].domain, feedSocket: found[0].feedSocket, hasDomainXml: found[0].hasDomainXml }, { domain: 'db-1', feedSocket: undefined, hasDomainXml: false }, 'no domain.xml: the folder name, no feed from the folder')
  t.strictSame(await new VmDirectory(join(vmDir, 'missing')).scan(), [], 'a VM directory that does not exist holds no VMs')
})
