import t from 'tap'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { COMMANDS } from '../../packaging/bin/commands'
import { EXIT } from '../../packaging/bin/exit-codes'
import { commandHelp, overview, resolve } from '../../packaging/bin/help'
import { VERSION } from '../../agent/build-info'
import { runFedvm, type CliResult } from '../protocol/support/fedvm-process'

// The built `fedvm` (npm run build first): help on stdout with exit 0, usage errors on stderr with
// one usage line and EXIT.USAGE, bad configs with EXIT.CONFIG, and every flag a usage line shows is
// one its command takes.

async function tempDir (t: { teardown (fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fedvm-cli-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** Runs a few at a time: the machine is shared. */
async function runAll (lines: string[][]): Promise<CliResult[]> {
  const results: CliResult[] = []
  for (let i = 0; i < lines.length; i += 4) results.push(...await Promise.all(lines.slice(i, i + 4).map((args) => runFedvm(args))))
  return results
}

t.test('help: `fedvm help X [Y]` and `fedvm X [Y] --help` print the same text on stdout and exit 0', async (t) => {
  const asked = [['site', 'migrate'], ['migrate'], ['site'], ['monitor', 'query'], ['keygen']]
  const results = await runAll(asked.flatMap((words) => [['help', ...words], [...words, '--help']]))
  asked.forEach((words, i) => {
    const [viaHelp, viaFlag] = [results[2 * i], results[2 * i + 1]]
    const expected = commandHelp(resolve(COMMANDS, words)!)
    t.equal(viaHelp.code, EXIT.OK, `fedvm help ${words.join(' ')}: exit 0`)
    t.equal(viaHelp.stdout, expected, `fedvm help ${words.join(' ')}: its help`)
    t.equal(viaFlag.code, EXIT.OK, `fedvm ${words.join(' ')} --help: exit 0`)
    t.equal(viaFlag.stdout, expected, `fedvm ${words.join(' ')} --help: the same help`)
  })
  const [flag, word, none] = await runAll([['--help'], ['help'], []])
  t.equal(flag.stdout, overview(COMMANDS, VERSION), 'fedvm --help: the overview')
  t.equal(word.stdout, flag.stdout, 'fedvm help: the overview')
  t.same([none.code, none.stdout, none.stderr], [EXIT.USAGE, '', flag.stdout], 'fedvm alone: the overview on stderr, a usage error')
})

t.test('a usage error: a message, exactly one usage line (the command line\'s own), exit 2, nothing on stdout', async (t) => {
  const dir = await tempDir(t)
  const config = join(dir, 'site.json')
  const cases: Array<[string[], RegExp, string]> = [
    [['migrate', '--config', config], /^fedvm migrate: --vm ID is required$/m, 'fedvm migrate --config FILE --vm ID [--to SITE|HOST] [--json]'],
    [['migrate', '--vm', 'web-1'], /--config FILE is required/, 'fedvm migrate --config FILE --vm ID [--to SITE|HOST] [--json]'],
    [['migrate', '--config', config, '--vm', 'web-1', '--dest', 'site-b'], /Unknown option '--dest'/, 'fedvm migrate --config FILE --vm ID [--to SITE|HOST] [--json]'],
    [['site', 'migrate', '--config', config], /^fedvm site: --vm ID is required$/m, 'fedvm site migrate --config FILE --vm ID [--to SITE|HOST] [--json]'],
    [['site', 'status', '--config', config, '--vm', 'web-1'], /Unknown option '--vm'/, 'fedvm site status --config FILE [--json]'],
    [['site', 'place', '--config', config, '--vm', 'web-1'], /--dir DIR is required/, 'fedvm site place --config FILE --vm ID --dir DIR [--descriptor FILE]'],
    [['site'], /a sub-command is missing \(run, migrate, place, evict, cancel, status, dead-letters\)/, COMMANDS.find((c) => c.name === 'site')!.usage],
    [['site', 'bogus', '--config', config], /unknown site sub-command "bogus"/, COMMANDS.find((c) => c.name === 'site')!.usage],
    [['monitor', 'query', '--config', config, '--vm', 'web-1', '--since', 'yesterday'], /--since "yesterday" is neither/, COMMANDS.find((c) => c.name === 'monitor')!.usage],
    [['monitor', 'query', '--config', config], /--vm ID is required/, COMMANDS.find((c) => c.name === 'monitor')!.usage],
    [['agent', 'run'], /--config FILE is required/, 'fedvm agent run --config FILE'],
    [['keygen', '--site', 'site-q'], /--out DIR is required/, 'fedvm keygen --out DIR [--site ID]'],
    [['seal'], /--to PRIMARY_PUBLIC_KEY is required/, 'fedvm seal --to PRIMARY_PUBLIC_KEY|FILE < value > sealed'],
    [['unseal', 'extra'], /Unexpected argument 'extra'/, 'fedvm unseal --key PRIMARY_SECRET_KEY_FILE < sealed > value'],
    [['guestfs', 'mount', join(dir, 'kpi')], /--db FILE is required/, COMMANDS.find((c) => c.name === 'guestfs')!.usage],
  ]
  const results = await runAll(cases.map(([args]) => args))
  cases.forEach(([args, message, usage], i) => {
    const { code, stdout, stderr } = results[i]
    const what = `fedvm ${args.join(' ').replaceAll(dir, 'DIR')}`
    t.equal(code, EXIT.USAGE, `${what}: exit ${EXIT.USAGE}`)
    t.match(stderr, message, `${what}: says what is wrong`)
    t.same(stderr.match(/^usage: .*$/gm), [`usage: ${usage}`], `${what}: one usage line, its own`)
    t.equal(stdout, '', `${what}: nothing on stdout`)
  })
  t.same(await readdir(dir), [], 'nothing was created')
})

t.test('unknown commands and help for them are usage errors', async (t) => {
  const [unknown, helpUnknown, helpBadSub] = await runAll([['nope'], ['help', 'nope'], ['help', 'site', 'nope']])
  for (const [what, result, message] of [['fedvm nope', unknown, /unknown command "nope"/], ['fedvm help nope', helpUnknown, /unknown command "nope"/], ['fedvm help site nope', helpBadSub, /has no sub-command "nope"/]] as const) {
    t.equal(result.code, EXIT.USAGE, `${what}: exit ${EXIT.USAGE}`)
    t.match(result.stderr, message, what)
    t.equal(result.stdout, '', `${what}: nothing on stdout`)
  }
})

t.test('a config that cannot be used exits 3 (EXIT.CONFIG) and names the file and the field', async (t) => {
  const dir = await tempDir(t)
  const missing = join(dir, 'missing.json')
  const broken = join(dir, 'broken.json')
  const badSite = join(dir, 'site.json')
  const badAgent = join(dir, 'agent.json')
  await writeFile(broken, '{ "id": ')
  await writeFile(badSite, JSON.stringify({ id: 'Site A' }))
  await writeFile(badAgent, JSON.stringify({ stateDir: 'state', vms: 'none' }))
  const cases: Array<[string[], RegExp]> = [
    [['site', 'status', '--config', missing], /missing\.json: cannot be read/],
    [['migrate', '--config', broken, '--vm', 'web-1'], /broken\.json: is not valid JSON/],
    [['site', 'run', '--config', badSite], /site\.json: .*\bid\b/],
    [['monitor', 'query', '--config', badSite, '--vm', 'web-1'], /site\.json: .*\bid\b/],
    [['agent', 'run', '--config', badAgent], /vms/],
  ]
  const results = await runAll(cases.map(([args]) => args))
  cases.forEach(([args, message], i) => {
    const what = `fedvm ${args.join(' ').replaceAll(dir, 'DIR')}`
    t.equal(results[i].code, EXIT.CONFIG, `${what}: exit ${EXIT.CONFIG}`)
    t.match(results[i].stderr, message, `${what}: names what is wrong`)
    t.notMatch(results[i].stderr, /^usage:/m, `${what}: not a usage error`)
  })
})

t.test('every flag a usage line shows is one its command takes', async (t) => {
  const dir = await tempDir(t)
  const values: Record<string, string> = {
    '--config': join(dir, 'missing.json'), '--vm': 'web-1', '--dir': dir, '--descriptor': join(dir, 'missing-descriptor.json'),
    '--db': join(dir, 'kpi.db'), '--sync': 'sometimes', '--feed': `unix:${join(dir, 'feed.sock')}`,
    '--metric': 'cpu.time', '--since': '10m', '--until': '1m', '--output': 'table', '--limit': '5',
    '--to': join(dir, 'missing.pub'), '--key': join(dir, 'missing.key'), '--out': join(dir, 'keys'), '--site': 'site-q',
    '--configuration': 'large', '--consumer': 'c1', '--into': join(dir, 'missing.ovf'), '--host': 'h1',
    '--patch': join(dir, 'missing-patch.json'), '--version': '2', '--memory-mib': '512', '--vcpus': '2',
    '--id': '3', '--reason': 'bad-request', '--next-hop': 'site-q',
  }
  // Switches take no value.
  const switches = new Set(['--json', '--requeue', '--all'])
  // The demo runs a whole federation (test/packaging/demo.test.ts runs it with its flags).
  const lines = COMMANDS.filter((command) => command.name !== 'demo').flatMap((command) => (command.subcommands ?? [command]).map((help) => {
    const flags = [...new Set(help.usage.match(/--[a-z-]+/g) ?? [])]
    for (const flag of flags) if (values[flag] === undefined && !switches.has(flag)) t.fail(`${help.usage}: no test value for ${flag}`)
    // The command's words: the usage line up to its first flag or placeholder.
    const rest = help.usage.split(' ').slice(1)
    const first = rest.findIndex((word) => !/^[a-z][a-z-]*$/.test(word))
    const words = first === -1 ? rest : rest.slice(0, first)
    const positional = help.usage.includes('MOUNTPOINT') ? [join(dir, 'kpi')] : []
    return { usage: help.usage, args: [...words, ...positional, ...flags.flatMap((flag) => switches.has(flag) ? [flag] : [flag, values[flag]])] }
  }))
  const results = await runAll(lines.map(({ args }) => args))
  lines.forEach(({ usage, args }, i) => {
    t.notMatch(results[i].stderr, /Unknown option/, `${usage}: takes ${args.filter((a) => a.startsWith('--')).join(' ')}`)
  })
})
