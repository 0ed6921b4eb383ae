// bench/transfer: moving a VM (random data, 2 GiB by default) between two fedvm sites on loopback,
// against a plain `cp` and an `scp` over loopback of the same files in the same run (each followed
// by an fsync of the copy, as fedvm's destination does); then the protocol's own cost for a 3-site
// chain A → B → C with a tiny VM: messages, bytes and time, the data copy excluded.
// Usage: node dist/bench/transfer.js [--mib N]   (writes bench/results/transfer.json)
// scp needs /usr/sbin/sshd (Debian openssh-server); without it the scp figure is reported missing.
import { execFile, spawn } from 'node:child_process'
import { randomFillSync } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { parseArgs, promisify } from 'node:util'
import { Federation } from '../test/protocol/support/federation'
import { freePort } from '../test/protocol/support/federation'

const run = promisify(execFile)
const REPO = join(__dirname, '..', '..')
const MiB = 1024 * 1024

async function makeRandomFile (file: string, bytes: number): Promise<void> {
  const handle = await open(file, 'w')
  const buf = Buffer.allocUnsafe(64 * MiB)
  for (let done = 0; done < bytes; done += buf.length) {
    randomFillSync(buf)
    await handle.write(buf, 0, Math.min(buf.length, bytes - done))
  }
  await handle.close()
}

async function timed (fn: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint()
  await fn()
  return Number(process.hrtime.bigint() - started) / 1e6
}

async function measureCp (src: string, dstDir: string): Promise<number> {
  await mkdir(dstDir, { recursive: true })
  return timed(async () => {
    await run('cp', [src, join(dstDir, 'disk.img')])
    await run('sync', [join(dstDir, 'disk.img')])
  })
}

/** An sshd of our own on loopback (temporary host key, key-only login), stopped by PID afterwards. */
async function measureScp (root: string, src: string, dstDir: string): Promise<number | null> {
  if (!existsSync('/usr/sbin/sshd')) return null
  const dir = join(root, 'ssh')
  await mkdir(dir, { recursive: true, mode: 0o700 })
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host')])
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'client')])
  await run('cp', [join(dir, 'client.pub'), join(dir, 'authorized_keys')])
  const port = await freePort('127.0.0.1')
  await writeFile(join(dir, 'sshd_config'), [
    `ListenAddress 127.0.0.1:${port}`, `HostKey ${join(dir, 'host')}`, `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'PasswordAuthentication no', 'Subsystem sftp internal-sftp', 'PermitRootLogin prohibit-password', 'StrictModes no', `PidFile ${join(dir, 'sshd.pid')}`, 'UsePAM no', '',
  ].join('\n'))
  await mkdir('/run/sshd', { recursive: true })
  const sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: 'ignore' })
  try {
    await new Promise((resolve) => setTimeout(resolve, 500))
    await mkdir(dstDir, { recursive: true })
    const user = (await run('id', ['-un'])).stdout.trim()
    return await timed(async () => {
      await run('scp', ['-q', '-i', join(dir, 'client'), '-P', String(port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
        src, `${user}@127.0.0.1:${join(dstDir, 'disk.img')}`], { maxBuffer: 1024 * 1024 })
      await run('sync', [join(dstDir, 'disk.img')])
    })
  } finally {
    sshd.kill('SIGTERM')
  }
}

function controlCost (fed: Federation, ids: string[]): { messages: number, bytes: number } {
  let messages = 0
  let bytes = 0
  for (const id of ids) {
    for (const e of fed.daemon(id).events()) {
      if (e.event !== 'send') continue
      messages += 2 // the request and its signed answer
      bytes += (e.requestBytes as number) + (e.answerBytes as number)
    }
  }
  return { messages, bytes }
}

async function main (): Promise<void> {
  const { values } = parseArgs({ options: { mib: { type: 'string', default: '2048' } } })
  const bytes = Number(values.mib) * MiB
  const root = await mkdtemp(join(REPO, '.bench-transfer-'))
  const fed = await Federation.create([
    { id: 'site-a', ip: '127.0.0.61', hosts: [{ id: 'a1', maxVms: 0 }], partners: ['site-b'] },
    { id: 'site-b', ip: '127.0.0.62', hosts: [{ id: 'b1', maxVms: 4 }], partners: ['site-a', 'site-c'], policy: { delegate: true, expose: 'all' } },
    { id: 'site-c', ip: '127.0.0.63', hosts: [{ id: 'c1', maxVms: 4 }], partners: ['site-b'] },
  ])
  try {
    const image = join(root, 'image')
    await mkdir(image)
    await makeRandomFile(join(image, 'disk.img'), bytes)
    await writeFile(join(image, 'domain.xml'), '<domain/>\n')
    const cpMs = await measureCp(join(image, 'disk.img'), join(root, 'cp'))
    await rm(join(root, 'cp'), { recursive: true })
    const scpMs = await measureScp(root, join(image, 'disk.img'), join(root, 'scp'))
    await rm(join(root, 'scp'), { recursive: true, force: true })

    // Two sites: site-a (no room) places the VM on site-b.
    await fed.start('site-a', 'site-b')
    const placed = await fed.cli('site-a', 'place', '--vm', 'big', '--dir', image)
    if (placed.code !== 0) throw new Error(`placement failed: ${placed.raw.stdout}${placed.raw.stderr}`)
    const prepared = fed.daemon('site-a').events().find((e) => e.event === 'prepared-for-leaving')!
    const received = fed.daemon('site-b').events().find((e) => e.event === 'transfer-received')!
    const fedvmMs = placed.json.durationMs as number
    await fed.stop('site-a'); await fed.stop('site-b')

    // Three sites, tiny VM: A → B → C, the protocol's own cost.
    await fed.reconfigure('site-b', (c) => { c.hosts = [] })
    await fed.start()
    // Two tiny VMs one after the other: the first pays TLS handshakes and warm-up ("cold"), the second runs on open connections ("warm").
    const chainRuns: Array<{ messages: number, bytes: number, ms: number, copyMs: number, controlMs: number }> = []
    let seen = { messages: 0, bytes: 0 }
    for (const vm of ['tiny-1', 'tiny-2']) {
      const tiny = join(root, vm)
      await mkdir(tiny)
      await writeFile(join(tiny, 'disk.img'), Buffer.alloc(4096, 1))
      const chain = await fed.cli('site-a', 'place', '--vm', vm, '--dir', tiny)
      if (chain.code !== 0 || chain.json.destination !== 'site-b') throw new Error(`chain placement failed: ${chain.raw.stdout}`)
      const cost = controlCost(fed, ['site-a', 'site-b', 'site-c'])
      const copyMs = fed.daemon('site-c').events().find((e) => e.event === 'transfer-received' && e.vm === vm)!.ms as number
      chainRuns.push({ messages: cost.messages - seen.messages, bytes: cost.bytes - seen.bytes, ms: chain.json.durationMs, copyMs, controlMs: chain.json.durationMs - copyMs })
      seen = cost
    }

    const mibps = (ms: number | null): number | null => ms === null ? null : Math.round((bytes / MiB) / (ms / 1000))
    const results = {
      bytes,
      cp: { ms: Math.round(cpMs), mibPerSecond: mibps(cpMs) },
      scp: scpMs === null ? { missing: 'no /usr/sbin/sshd (apt-get install openssh-server)' } : { ms: Math.round(scpMs), mibPerSecond: mibps(scpMs) },
      fedvm: {
        ms: fedvmMs, mibPerSecond: mibps(fedvmMs),
        // prepareMs: the Source stops the VM and fixes its file list (no hashing); firstByteMs: from
        // Initiate transfer at the destination to the first byte of file data arriving there.
        prepareMs: prepared.ms, transferAndVerifyMs: received.ms, firstByteMs: received.firstByteMs,
        ratioToCp: Number((cpMs / fedvmMs).toFixed(2)),
        ratioToScp: scpMs === null ? null : Number((scpMs / fedvmMs).toFixed(2)),
      },
      chain3: { cold: chainRuns[0], warm: chainRuns[1] },
      targets: { ratioToCp: '>= 0.6', scp: 'fedvm faster', firstByteMs: '<= 200', chainControlMs: '<= 100', chainBytes: '<= 65536' },
      // Figures from a shared machine mean little alone: the load beside them says how busy it was.
      loadAverage: loadavg().map((l) => Number(l.toFixed(2))),
    }
    await mkdir(join(REPO, 'bench', 'results'), { recursive: true })
    await writeFile(join(REPO, 'bench', 'results', 'transfer.json'), `${JSON.stringify(results, null, 2)}\n`)
    process.stdout.write(`${JSON.stringify(results, null, 2)}\n`)
  } finally {
    await fed.close()
    await rm(root, { recursive: true, force: true })
  }
}

main().catch((err) => { process.stderr.write(`${err.stack ?? err}\n`); process.exitCode = 1 })
