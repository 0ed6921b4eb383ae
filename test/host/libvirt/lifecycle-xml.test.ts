import t from 'tap'
import { HypervisorError } from '../../../host/errors'
import { diskFiles, domainName, rewriteSourcePaths } from '../../../host/libvirt/lifecycle-xml'

// The pure XML edits the libvirt VM host makes at the Destination (the e2e test runs them on real libvirt).

const XML = `<domain type='qemu'>
  <name>vm&amp;1</name>
  <os><kernel>/var/cache/fedvm-test/vmlinux</kernel></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='/srv/a/vm1/disk.img'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <target dev='hdc' bus='ide'/>
    </disk>
    <interface type='bridge'><source bridge='br0'/></interface>
    <serial type='file'><source path='/srv/a/vm1/console.log'/></serial>
    <channel type='unix'>
      <source mode='bind' path="/srv/a/vm1/it's.sock"/>
      <target type='virtio' name='org.fedvm.kpi'/>
    </channel>
  </devices>
</domain>
`

t.test('disk files: file disks only; an empty cdrom is skipped', async t => {
  t.same(diskFiles(XML), ['/srv/a/vm1/disk.img'])
  const block = XML.replace("<disk type='file' device='disk'>", "<disk type='block' device='disk'>").replace("file='/srv/a/vm1/disk.img'", "dev='/dev/sdb'")
  let caught: unknown
  try { diskFiles(block) } catch (err) { caught = err }
  t.ok(caught instanceof HypervisorError, 'a block-device disk cannot travel as a file')
  t.equal((caught as HypervisorError).code, 'UNSUPPORTED_VM')
  t.match((caught as Error).message, /type block/)
  t.same(diskFiles(XML.replace("file='/srv/a/vm1/disk.img'", 'file="/srv/a/vm1/d&amp;isk.img"')), ['/srv/a/vm1/d&isk.img'], 'either quote style, unescaped')
})

t.test('every <source> path moves into the new VM directory; kernel and bridge stay', async t => {
  const out = rewriteSourcePaths(XML, '/var/lib/b/vm1')
  t.match(out, "<source file='/var/lib/b/vm1/disk.img'/>")
  t.match(out, "<source path='/var/lib/b/vm1/console.log'/>")
  t.match(out, `<source mode='bind' path='/var/lib/b/vm1/it&apos;s.sock'/>`, 'channel socket too, escaped again')
  t.match(out, '<kernel>/var/cache/fedvm-test/vmlinux</kernel>', 'the host-provided kernel is left alone')
  t.match(out, "<source bridge='br0'/>")
  t.notMatch(out, '/srv/a', 'nothing of the Source directory left')
  t.equal(rewriteSourcePaths(out, '/var/lib/b/vm1'), out, 'rewriting twice changes nothing (confirm retries)')
})

t.test('domain name, unescaped', async t => {
  t.equal(domainName(XML), 'vm&1')
  t.equal(domainName('<domain/>'), undefined)
})
