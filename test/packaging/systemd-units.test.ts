import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { EXIT } from '../../packaging/bin/exit-codes'
import { REPO_ROOT } from '../support/dist-paths'

// The units in packaging/systemd pass `systemd-analyze verify` (Debian's systemd provides it without
// systemd running) with no warning at all, run as a clone runs it (packaging/systemd/verify: a
// temporary root, since /usr/bin/fedvm is not installed), stop restarting on the exit statuses a
// restart cannot fix, keep the hardening they claim, and the guestfs unit, its
// udev rule and its default feed all name the same virtio-serial port.

const run = promisify(execFile)
const UNITS = ['fedvm-agent.service', 'fedvm-site.service', 'fedvm-guestfs.service']
const SYSTEMD_DIR = join(REPO_ROOT, 'packaging', 'systemd')
/** How README tells a clone to verify the units: /usr/bin/fedvm is not installed there. */
const VERIFY = join(SYSTEMD_DIR, 'verify')

async function verify (args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number, stdout: string, stderr: string }> {
  try {
    const { stdout, stderr } = await run(VERIFY, args, { env })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code: number, stdout: string, stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

/** Copies of our units, edited, in a temporary folder: what verify is given instead of the real ones. */
async function editedUnits (t: { teardown (fn: () => unknown): void }, edit: (unit: string, text: string) => string): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-units-edited-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return Promise.all(UNITS.map(async (unit) => {
    await writeFile(join(dir, unit), edit(unit, await readFile(join(SYSTEMD_DIR, unit), 'utf8')))
    return join(dir, unit)
  }))
}

t.test('packaging/systemd/verify accepts every unit without a warning, from a clone, and leaves nothing behind', async (t) => {
  const scratch = await mkdtemp(join(tmpdir(), 'fedvm-verify-tmp-'))
  t.teardown(() => rm(scratch, { recursive: true, force: true }))
  const result = await verify([], { ...process.env, TMPDIR: scratch })
  t.equal(result.code, 0, 'verify exits 0')
  t.equal(result.stderr.trim(), '', 'verify prints no warning')
  t.same(await readdir(scratch), [], 'its temporary root is removed')
})

t.test('the verify check has teeth: a misspelt setting, an unknown key and a missing command are reported', async (t) => {
  const units = await editedUnits(t, (unit, text) => unit === 'fedvm-agent.service'
    ? text.replace('ProtectSystem=strict', 'ProtectSystem=strikt\nProtectSistem=yes').replace('/usr/bin/fedvm', '/usr/bin/fedvm-missing')
    : text)
  const result = await verify(units)
  t.not(result.code, 0, 'verify fails')
  t.match(result.stderr, /Failed to parse protect system value.*strikt/, 'a bad value is reported')
  t.match(result.stderr, /Unknown key.*ProtectSistem/, 'an unknown key is reported')
  t.match(result.stderr, /fedvm-missing is not executable/, 'a missing command is reported')
})

t.test('hardening: systemd-analyze security rates the host services well and guestfs acceptably', async (t) => {
  const { stdout } = await verify(['--security', ...UNITS.map((unit) => join(SYSTEMD_DIR, unit))])
  const limits: Record<string, number> = { 'fedvm-agent.service': 2.5, 'fedvm-site.service': 2.5, 'fedvm-guestfs.service': 5 }
  for (const unit of UNITS) {
    const score = Number(new RegExp(`Overall exposure level for ${unit.replace(/\./g, '\\.')}: ([0-9.]+)`).exec(stdout)?.[1])
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
    t.same(s.get('RestartPreventExitStatus'), [`${EXIT.USAGE} ${EXIT.CONFIG}`], `${unit}: no restart after a usage error or a bad config`)
    t.match(s.get('User')?.[0] ?? '', /^fedvm-/, `${unit}: a dedicated user`)
    t.same(s.get('CapabilityBoundingSet'), [''], `${unit}: no capabilities`)
    t.same([s.get('ProtectSystem')?.[0], s.get('ProtectHome')?.[0], s.get('PrivateTmp')?.[0]], ['strict', 'yes', 'yes'], `${unit}: ProtectSystem, ProtectHome, PrivateTmp`)
  }
  const guestfs = await settings('fedvm-guestfs.service')
  t.same(guestfs.get('RestartPreventExitStatus'), [`${EXIT.USAGE}`], 'guestfs: no restart after a usage error')
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
