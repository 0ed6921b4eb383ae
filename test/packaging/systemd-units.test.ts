import t from 'tap'
import { execFile } from 'node:child_process'
import { chmod, copyFile, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { REPO_ROOT } from '../support/dist-paths'

// The units in packaging/systemd pass `systemd-analyze verify` (Debian's systemd provides it without
// systemd running) with no warning at all, keep the hardening they claim, and the guestfs unit, its
// udev rule and its default feed all name the same virtio-serial port.

const run = promisify(execFile)
const UNITS = ['fedvm-agent.service', 'fedvm-site.service', 'fedvm-guestfs.service']
const SYSTEMD_DIR = join(REPO_ROOT, 'packaging', 'systemd')

/**
 * A root for `systemd-analyze verify --root`: the host's own units (the targets ours are ordered
 * against), ours, and the commands ours run (verify checks each is an executable file).
 */
async function unitRoot (t: { teardown (fn: () => unknown): void }, edit?: (unit: string, text: string) => string): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'fedvm-units-'))
  t.teardown(() => rm(root, { recursive: true, force: true }))
  const unitDir = join(root, 'lib', 'systemd', 'system')
  await cp('/lib/systemd/system', unitDir, { recursive: true, verbatimSymlinks: true })
  for (const unit of UNITS) {
    const text = await readFile(join(SYSTEMD_DIR, unit), 'utf8')
    await writeFile(join(unitDir, unit), edit ? edit(unit, text) : text)
  }
  await mkdir(join(root, 'usr', 'bin'), { recursive: true })
  await mkdir(join(root, 'bin'), { recursive: true })
  await copyFile(join(REPO_ROOT, 'packaging', 'deb', 'fedvm.sh'), join(root, 'usr', 'bin', 'fedvm'))
  await chmod(join(root, 'usr', 'bin', 'fedvm'), 0o755)
  for (const command of ['/bin/sh', '/bin/kill']) await copyFile(command, join(root, command))
  return root
}

async function verify (root: string): Promise<{ code: number, stderr: string }> {
  try {
    const { stderr } = await run('systemd-analyze', ['verify', `--root=${root}`, ...UNITS])
    return { code: 0, stderr }
  } catch (err) {
    const e = err as { code: number, stderr: string }
    return { code: e.code, stderr: e.stderr }
  }
}

t.test('systemd-analyze verify accepts every unit without a warning', async (t) => {
  const result = await verify(await unitRoot(t))
  t.equal(result.code, 0, 'verify exits 0')
  t.equal(result.stderr.trim(), '', 'verify prints no warning')
})

t.test('the verify check has teeth: a misspelt setting, an unknown key and a missing command are reported', async (t) => {
  const root = await unitRoot(t, (unit, text) => unit === 'fedvm-agent.service'
    ? text.replace('ProtectSystem=strict', 'ProtectSystem=strikt\nProtectSistem=yes').replace('/usr/bin/fedvm', '/usr/bin/fedvm-missing')
    : text)
  const result = await verify(root)
  t.match(result.stderr, /Failed to parse protect system value.*strikt/, 'a bad value is reported')
  t.match(result.stderr, /Unknown key.*ProtectSistem/, 'an unknown key is reported')
  t.match(result.stderr, /fedvm-missing is not executable/, 'a missing command is reported')
})

t.test('hardening: systemd-analyze security rates the host services well and guestfs acceptably', async (t) => {
  const root = await unitRoot(t)
  const limits: Record<string, number> = { 'fedvm-agent.service': 2.5, 'fedvm-site.service': 2.5, 'fedvm-guestfs.service': 5 }
  for (const unit of UNITS) {
    const { stdout } = await run('systemd-analyze', ['security', '--offline=yes', `--root=${root}`, '--no-pager', unit])
    const score = Number(/Overall exposure level for \S+: ([0-9.]+)/.exec(stdout)?.[1])
    t.ok(score <= limits[unit], `${unit}: exposure ${score} ≤ ${limits[unit]}`)
  }
})

t.test('each unit has the settings it claims', async (t) => {
  const settings = async (unit: string): Promise<Map<string, string[]>> => {
    const map = new Map<string, string[]>()
    for (const line of (await readFile(join(SYSTEMD_DIR, unit), 'utf8')).split('\n')) {
      const match = /^([A-Za-z]+)=(.*)$/.exec(line)
      if (match) map.set(match[1], [...(map.get(match[1]) ?? []), match[2]])
    }
    return map
  }
  for (const unit of UNITS) {
    const s = await settings(unit)
    t.equal(s.get('Restart')?.[0], 'on-failure', `${unit}: restarts on failure`)
    t.match(s.get('EnvironmentFile')?.[0] ?? '', /^-\/etc\/default\/fedvm-/, `${unit}: optional /etc/default file`)
    t.equal(s.get('StandardError')?.[0] ?? 'journal', 'journal', `${unit}: logs to the journal`)
    t.equal(s.get('NoNewPrivileges')?.[0], 'yes', `${unit}: NoNewPrivileges`)
    t.ok(s.has('CapabilityBoundingSet'), `${unit}: a capability bounding set`)
    t.match(s.get('StateDirectory')?.[0] ?? '', /^fedvm\//, `${unit}: a StateDirectory under /var/lib/fedvm`)
  }
  for (const unit of ['fedvm-agent.service', 'fedvm-site.service']) {
    const s = await settings(unit)
    t.match(s.get('User')?.[0] ?? '', /^fedvm-/, `${unit}: a dedicated user`)
    t.same(s.get('CapabilityBoundingSet'), [''], `${unit}: no capabilities`)
    t.same([s.get('ProtectSystem')?.[0], s.get('ProtectHome')?.[0], s.get('PrivateTmp')?.[0]], ['strict', 'yes', 'yes'], `${unit}: ProtectSystem, ProtectHome, PrivateTmp`)
  }
  const guestfs = await settings('fedvm-guestfs.service')
  t.same(guestfs.get('CapabilityBoundingSet'), ['CAP_SYS_ADMIN'], 'guestfs: CAP_SYS_ADMIN only')
  // A mount namespace of its own would hide the FUSE mount from the VM's applications.
  for (const key of ['ProtectSystem', 'ProtectHome', 'PrivateTmp', 'PrivateDevices', 'PrivateMounts', 'ProtectKernelTunables', 'ProtectControlGroups', 'DevicePolicy', 'ProtectClock']) {
    t.notOk(guestfs.has(key), `guestfs: no ${key} (it would make /kpi invisible or cut off /dev/fuse)`)
  }
})

t.test('the guestfs unit, its udev rule and its default feed name the same virtio-serial port', async (t) => {
  const unit = await readFile(join(SYSTEMD_DIR, 'fedvm-guestfs.service'), 'utf8')
  const rule = await readFile(join(SYSTEMD_DIR, '60-fedvm-guestfs.rules'), 'utf8')
  const port = /ATTR\{name\}=="([^"]+)"/.exec(rule)?.[1] ?? '(none)'
  t.equal(port, 'org.fedvm.kpi.0', 'the rule matches the port org.fedvm.kpi.0')
  t.match(rule, /SUBSYSTEM=="virtio-ports"/, 'the rule matches virtio ports')
  t.match(rule, /TAG\+="systemd"/, 'the rule makes a systemd device unit')
  t.match(rule, /ENV\{SYSTEMD_WANTS\}\+="fedvm-guestfs\.service"/, 'the rule starts fedvm-guestfs.service')
  const { stdout } = await run('systemd-escape', ['--path', '--suffix=device', `/dev/virtio-ports/${port}`])
  const device = stdout.trim()
  t.match(unit, new RegExp(`^BindsTo=${device.replace(/[\\.]/g, '\\$&')}$`, 'm'), `BindsTo=${device}`)
  t.match(unit, new RegExp(`^After=${device.replace(/[\\.]/g, '\\$&')}( |$)`, 'm'), `After=${device}`)
  t.match(unit, new RegExp(`^Environment=FEDVM_GUESTFS_FEED=dev:/dev/virtio-ports/${port.replace(/\./g, '\\.')}$`, 'm'), 'the default feed is that port')
  t.notMatch(unit, /^\[Install\]/m, 'no [Install]: udev starts it, as with qemu-guest-agent')
})
