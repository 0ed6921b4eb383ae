import t from 'tap'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { open, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Federation } from '../protocol/support/federation'
import { FedvmDaemon } from '../protocol/support/fedvm-process'
import { digestsOf, makeVmDir } from '../protocol/support/vm-files'

const MiB = 1024 * 1024
const CHUNK = MiB

// Faults: the destination killed mid-transfer (retry resumes, a damaged chunk is refetched, nothing
// copied twice), the destination gone for good (the VM stays at the source and works), a site down
// at placement (clean failure).
t.test('transfer faults', async (t) => {
  const fed = await Federation.create([
    { id: 'site-a', ip: '127.0.0.31', hosts: [{ id: 'a1', maxVms: 1 }], partners: ['site-b'], maxBytesPerSecond: 8 * MiB, limits: { chunkBytes: CHUNK } },
    { id: 'site-b', ip: '127.0.0.32', hosts: [{ id: 'b1', maxVms: 3 }], partners: ['site-a'] },
  ])
  t.teardown(() => fed.close())
  await fed.start()
  const cliProcesses: FedvmDaemon[] = []
  t.teardown(() => Promise.all(cliProcesses.map((p) => p.stop('SIGKILL'))))
  const background = (...args: string[]): FedvmDaemon => {
    const p = new FedvmDaemon(['site', ...args.slice(0, 1), '--config', fed.site('site-a').configFile, ...args.slice(1)])
    cliProcesses.push(p)
    return p
  }

  const localImage = join(fed.root, 'vm-local')
  const localDigests = await makeVmDir(localImage, { 'disk.img': 20 * MiB })
  const local = await fed.cli('site-a', 'place', '--vm', 'vm-local', '--dir', localImage)
  t.match(local.json, { outcome: 'migrated', destination: 'site-a', local: true }, 'placed on site-a\'s own host first')

  await t.test('destination killed mid-transfer: the retry resumes and refetches a damaged chunk', async (t) => {
    const image = join(fed.root, 'vm-big')
    const digests = await makeVmDir(image, { 'disk.img': 24 * MiB + 5, 'domain.xml': 1000 })
    const source = await readFile(join(image, 'disk.img'))
    const placing = background('place', '--vm', 'vm-big', '--dir', image)
    const done = new Promise<string>((resolve) => { let out = ''; placing.child.stdout!.on('data', (d) => { out += d }); placing.child.once('exit', () => resolve(out)) })
    await fed.daemon('site-b').waitForEvent((e) => e.event === 'transfer-progress' && (e.bytes as number) >= 6 * MiB)
    await fed.stop('site-b', 'SIGKILL')

    // Damage one byte of a chunk that had arrived intact.
    const staged = join(fed.vmDir('site-b', 'b1'), '.incoming', 'vm-big', 'disk.img')
    const handle = await open(staged, 'r+')
    let damaged = -1
    for (let i = 0; i < 24 && damaged < 0; i++) {
      const buf = Buffer.alloc(CHUNK)
      await handle.read(buf, 0, CHUNK, i * CHUNK)
      if (buf.equals(source.subarray(i * CHUNK, (i + 1) * CHUNK))) damaged = i
    }
    t.ok(damaged >= 0, 'some chunk had arrived before the kill')
    await handle.write(Buffer.from([source[damaged * CHUNK + 10] ^ 0xff]), 0, 1, damaged * CHUNK + 10)
    await handle.close()

    await fed.start('site-b')
    const outcome = JSON.parse(await done)
    t.match(outcome, { outcome: 'migrated', destination: 'site-b', digestsAgree: true, bytes: 24 * MiB + 1005 })
    t.ok(outcome.attempts >= 2, `Initiate was repeated (${outcome.attempts} attempts)`)
    t.ok(outcome.reusedBytes >= 4 * MiB, `the retry reused what had arrived (${outcome.reusedBytes} bytes)`)
    t.ok(outcome.fetchedBytes < outcome.bytes, `and fetched only the rest (${outcome.fetchedBytes} of ${outcome.bytes})`)
    t.equal(outcome.fetchedBytes + outcome.reusedBytes, outcome.bytes, 'every byte either reused or fetched once')
    t.same(await digestsOf(join(fed.vmDir('site-b', 'b1'), 'vm-big')), digests, 'byte-exact, the damaged byte refetched')
    t.notOk(existsSync(join(fed.vmDir('site-b', 'b1'), '.incoming', 'vm-big')), 'nothing left in the incoming directory')
  })

  await t.test('a running transfer can be cancelled: the VM stays, nothing is left at the destination', async (t) => {
    const image = join(fed.root, 'vm-c')
    await makeVmDir(image, { 'disk.img': 192 * MiB }) // 24 s at the cap: time enough for two CLI commands to start on a loaded machine (the cancel ends it early)
    const placing = background('place', '--vm', 'vm-c', '--dir', image)
    const done = new Promise<{ out: string, code: number | null }>((resolve) => { let out = ''; placing.child.stdout!.on('data', (d) => { out += d }); placing.child.once('exit', (code) => resolve({ out, code })) })
    await fed.daemon('site-b').waitForEvent((e) => e.event === 'transfer-progress' && e.vm === 'vm-c' && (e.bytes as number) > 0)
    const running = (await fed.cli('site-b', 'status')).json.transfers.find((p: { vmId: string }) => p.vmId === 'vm-c')
    t.ok(running && running.remainingBytes > 0 && running.remainingBytes < running.totalBytes && running.rateBytesPerSecond > 0, `progress is visible while it runs (${JSON.stringify(running)})`)
    t.ok(running.rateBytesPerSecond <= 8 * MiB * 1.25, 'and the source proxy\'s bandwidth cap (8 MiB/s) holds')
    const cancelled = await fed.cli('site-a', 'cancel', '--vm', 'vm-c')
    t.match(cancelled.json, { vm: 'vm-c', transfers: 1, cancelled: 1 })
    const { out, code } = await done
    t.equal(code, 1, 'the placement ends as failed')
    t.match(JSON.parse(out), { outcome: 'failed' })
    await fed.daemon('site-b').waitForEvent((e) => e.event === 'transfer-failed' && e.vm === 'vm-c')
    t.notOk(existsSync(join(fed.vmDir('site-b', 'b1'), 'vm-c')), 'no VM at the destination')
    t.notOk(existsSync(join(fed.vmDir('site-b', 'b1'), '.incoming', 'vm-c')), 'and no partial files')
    t.notOk((await fed.cli('site-a', 'status')).json.locations.some((l: { vmId: string }) => l.vmId === 'vm-c'), 'site-a does not manage it')
  })

  await t.test('destination gone for good: the VM stays at the source and still works', async (t) => {
    const migrating = background('migrate', '--vm', 'vm-local')
    const done = new Promise<{ out: string, code: number | null }>((resolve) => { let out = ''; migrating.child.stdout!.on('data', (d) => { out += d }); migrating.child.once('exit', (code) => resolve({ out, code })) })
    await fed.daemon('site-b').waitForEvent((e) => e.event === 'transfer-progress' && e.vm === 'vm-local' && (e.bytes as number) > 0)
    await fed.stop('site-b', 'SIGKILL')
    const { out, code } = await done
    t.equal(code, 1, 'the migration fails')
    t.match(JSON.parse(out), { outcome: 'failed', retryable: true })
    const vmDir = join(fed.vmDir('site-a', 'a1'), 'vm-local')
    t.same(await digestsOf(vmDir), localDigests, 'the VM\'s files are intact at the source')
    t.notOk(existsSync(join(fed.vmDir('site-a', 'a1'), '.leaving', 'vm-local')), 'and it is no longer prepared for leaving')
    const locations = (await fed.cli('site-a', 'status')).json.locations as Array<{ vmId: string }>
    t.match(locations.find((l) => l.vmId === 'vm-local'), { kind: 'host', target: 'a1' }, 'site-a still places it on a1')
  })

  await t.test('a site down at placement: clean failure, nothing recorded', async (t) => {
    const image = join(fed.root, 'vm-3')
    await makeVmDir(image, { 'disk.img': 4096 })
    const placed = await fed.cli('site-a', 'place', '--vm', 'vm-3', '--dir', image)
    t.equal(placed.code, 1)
    t.match(placed.json, { outcome: 'failed', code: 'no-placement', retryable: true })
    t.notOk((await fed.cli('site-a', 'status')).json.locations.some((l: { vmId: string }) => l.vmId === 'vm-3'))
    t.equal(createHash('sha256').update(await readFile(join(image, 'disk.img'))).digest('hex').length, 64, 'the owner\'s files are untouched')
  })
})
