import t from 'tap'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runFedvm } from '../support/guestfs-mount'
import { AgentProcess } from './support/agent-process'
import { freePort } from '../support/free-port'
import { waitFor } from '../support/wait'

// `fedvm agent run --config FILE`; "Bad config: a message naming the field, exit code ≠ 0."

const KEY = 'daVrEvsmEg1Zc9GiRkbwfBFuUlHEhk8c0gb/8iPvhwQ='
const RAW = { metric: 'kpi:users.current_users', monitoringIntervalMs: 0, deliveryIntervalMs: 0, format: 'raw' }

async function tempDir (t: { teardown (fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-agent-cli-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

async function writeJson (file: string, json: unknown): Promise<string> {
  await writeFile(file, typeof json === 'string' ? json : JSON.stringify(json))
  return file
}

t.test('a bad config: exit code ≠ 0 and a message naming the field, before anything starts', async (t) => {
  const dir = await tempDir(t)
  const cases: Array<[unknown, RegExp]> = [
    [{ vms: [{ name: 'web-1', descriptor: 'd.json', feed: 'tcp:127.0.0.1:9' }] }, /vms\[0\]\.feed: must be unix:PATH/],
    [{ listen: 'localhost' }, /listen: must be HOST:PORT/],
    [{ consumers: [{ type: 'http', url: 'ftp://x/' }] }, /consumers\[0\]\.url: must be an http\(s\) URL/],
    ['{ "vms": [', /bad-3\.json: .*JSON/],
  ]
  // In parallel: each run starts a node process, and the cases are independent.
  const runs = await Promise.all(cases.map(async ([json], i) => {
    const file = await writeJson(join(dir, `bad-${i}.json`), json)
    return runFedvm(['agent', 'run', '--config', file])
  }))
  runs.forEach(({ code, stderr }, i) => {
    t.not(code, 0, `exit code ${code}`)
    t.match(stderr, cases[i][1])
    t.match(stderr, /^fedvm agent: /, 'one line saying what is wrong')
  })
  t.notOk(existsSync(join(dir, 'state')), 'nothing was started')
})

t.test('a bad descriptor: exit code ≠ 0 and a message naming the VM, the file and the field', async (t) => {
  const dir = await tempDir(t)
  await writeJson(join(dir, 'web-1.json'), { id: 'web-1', primarySite: { id: 'a', publicKey: KEY }, monitoring: [RAW, { ...RAW, format: 'processed', function: 'avg' }] })
  const config = await writeJson(join(dir, 'agent.json'), { listen: `127.0.0.1:${await freePort()}`, stateDir: 'state', vms: [{ name: 'web-1', descriptor: 'web-1.json' }] })
  const bad = await runFedvm(['agent', 'run', '--config', config])
  t.not(bad.code, 0)
  t.match(bad.stderr, /vms\[0\]\.descriptor \(.*web-1\.json\): monitoring\[1\]\.function: /)

  await writeJson(join(dir, 'agent.json'), { stateDir: 'state', vms: [{ name: 'web-1', descriptor: 'missing.json' }] })
  const missing = await runFedvm(['agent', 'run', '--config', config])
  t.not(missing.code, 0)
  t.match(missing.stderr, /vms\[0\]\.descriptor: cannot read .*missing\.json/)
})

t.test('a bad command line is a usage error', async (t) => {
  const [noConfig, noVerb] = await Promise.all([runFedvm(['agent', 'run']), runFedvm(['agent', '--config', 'x.json'])])
  t.equal(noConfig.code, 2)
  t.match(noConfig.stderr, /--config FILE is required/)
  t.equal(noVerb.code, 2)
  t.match(noVerb.stderr, /usage: fedvm agent run\|dead-letters --config FILE/)
})

t.test('relative paths are resolved from the config file\'s folder, not the working directory', async (t) => {
  const dir = await tempDir(t)
  const port = await freePort()
  await writeJson(join(dir, 'web-1.json'), { id: 'web-1', primarySite: { id: 'a', publicKey: KEY }, monitoring: [RAW] })
  const config = await writeJson(join(dir, 'agent.json'), { listen: `127.0.0.1:${port}`, stateDir: 'state', vms: [{ name: 'web-1', descriptor: 'web-1.json', feed: 'unix:feed.sock' }] })
  let connections = 0
  const guest = createServer((socket) => {
    connections++
    socket.destroy()
  })
  await new Promise<void>((resolve) => guest.listen(join(dir, 'feed.sock'), resolve))
  t.teardown(() => new Promise<void>((resolve) => guest.close(() => resolve())))

  const cwd = await tempDir(t)
  const agent = await AgentProcess.start(t, config, port, { cwd })
  t.ok(existsSync(join(dir, 'state', 'agent.db')), 'stateDir "state" is beside the config')
  t.notOk(existsSync(join(cwd, 'state')), 'not in the working directory')
  await waitFor('the agent to connect to unix:feed.sock beside the config', () => connections > 0)
  t.match(await agent.metrics(), /fedvm_build_info\{version="[^"]+"\} 1/)
  agent.signal('SIGTERM')
  const exit = await agent.exited
  t.strictSame(exit, { code: 0, signal: null }, 'SIGTERM: a clean stop')
  t.match(agent.log(), /agent: stopped/)
})
