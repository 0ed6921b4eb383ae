import t from 'tap'
import { COMMANDS } from '../../packaging/bin/commands'
import { EXIT, exitCodeOf } from '../../packaging/bin/exit-codes'
import { asksForHelp, commandHelp, overview, resolve, usageLine } from '../../packaging/bin/help'

// The help texts come from packaging/bin/commands.ts alone; these checks run in-process (no build).
// cli-usage.test.ts runs the built command for the wiring.

const entries = COMMANDS.flatMap((command) => [
  { words: [command.name], help: command },
  ...(command.subcommands ?? []).map((sub) => ({ words: [command.name, sub.name], help: sub })),
])

t.test('every command and sub-command has a usage line for itself, a summary and an example that uses it', async (t) => {
  for (const { words, help } of entries) {
    const name = `fedvm ${words.join(' ')}`
    t.ok(help.usage.startsWith(`${name} `) || help.usage === name, `${name}: the usage line starts with "${name}"`)
    t.ok(help.summary.length > 10, `${name}: a summary`)
    t.match(help.example, new RegExp(`(^|\\| )${name}( |$)`), `${name}: the example runs ${name}`)
    for (const flag of help.example.match(/--[a-z-]+/g) ?? []) t.ok(help.usage.includes(flag), `${name}: the example's ${flag} is in the usage line`)
    for (const [flag] of help.options ?? []) {
      for (const word of flag.match(/--[a-z-]+/g) ?? []) t.ok(help.usage.includes(word), `${name}: option ${word} is in the usage line`)
    }
  }
})

t.test('a command\'s usage line names each of its sub-commands and their flags', async (t) => {
  for (const command of COMMANDS) {
    for (const sub of command.subcommands ?? []) {
      t.ok(command.usage.includes(sub.name), `fedvm ${command.name}'s usage names ${sub.name}`)
      for (const flag of sub.usage.match(/--[a-z-]+/g) ?? []) t.ok(command.usage.includes(flag), `fedvm ${command.name}'s usage has ${sub.name}'s ${flag}`)
    }
  }
})

t.test('fedvm --help lists every command with its summary and usage line', async (t) => {
  const text = overview(COMMANDS, '9.9.9')
  t.match(text, /^fedvm 9\.9\.9: /)
  for (const command of COMMANDS) {
    t.match(text, new RegExp(`^  ${command.name} +${command.summary.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'), `${command.name}: its summary`)
    t.ok(text.includes(command.usage), `${command.name}: its usage line`)
  }
})

t.test('fedvm help COMMAND [SUB]: the usage line, options and example of what was asked', async (t) => {
  for (const { words, help } of entries) {
    const resolved = resolve(COMMANDS, words)
    t.ok(resolved, `${words.join(' ')} resolves`)
    const text = commandHelp(resolved!)
    t.ok(text.startsWith(`usage: ${help.usage}\n`), `${words.join(' ')}: starts with its usage line`)
    t.match(text, `Example:\n  ${help.example}\n`, `${words.join(' ')}: its example`)
    for (const [flag, meaning] of help.options ?? []) t.ok(text.includes(`${flag}`) && text.includes(meaning), `${words.join(' ')}: explains ${flag}`)
  }
  const site = commandHelp(resolve(COMMANDS, ['site'])!)
  for (const sub of COMMANDS.find((c) => c.name === 'site')!.subcommands!) t.ok(site.includes(sub.usage), `fedvm help site lists ${sub.usage}`)
  t.match(commandHelp(resolve(COMMANDS, ['guestfs'])!), /^usage: fedvm guestfs mount MOUNTPOINT/, 'a command with one sub-command shows that sub-command in full')
})

t.test('a usage error shows one usage line: the sub-command\'s when one was named', async (t) => {
  const line = (words: string[]) => usageLine(resolve(COMMANDS, words)!)
  t.match(line(['migrate', '--config', 'x']), /^usage: fedvm migrate --config FILE --vm ID \[--to SITE\|HOST\] \[--json\]\n/)
  t.notMatch(line(['migrate', '--config', 'x']), /fedvm site/, '`fedvm migrate` never shows `fedvm site`')
  t.match(line(['site', 'migrate']), /^usage: fedvm site migrate --config FILE --vm ID \[--to SITE\|HOST\] \[--json\]\n/)
  t.match(line(['site', 'bogus']), /^usage: fedvm site run\|migrate\|place\|evict\|cancel\|status\|dead-letters /)
  t.match(line(['site', 'dead-letters']), /^usage: fedvm site dead-letters --config FILE .*\[--requeue \(--id N \.\.\.\|--all\) \[--reason CODE\]\]\n/, 'the site\'s requeue chooses by code too')
  t.match(line(['guestfs']), /^usage: fedvm guestfs mount MOUNTPOINT --db FILE /, 'the only sub-command stands for its command')
  t.match(line(['agent']), /^usage: fedvm agent run\|dead-letters --config FILE \[--consumer NAME\] \[--limit N\] \[--requeue \(--id N \.\.\.\|--all\) \[--reason CODE\]\]\n/, 'several sub-commands: the command\'s line')
  for (const { words } of entries) t.equal(line(words).match(/usage:/g)?.length, 1, `${words.join(' ')}: one usage line`)
})

t.test('resolve and asksForHelp', async (t) => {
  t.equal(resolve(COMMANDS, ['nope']), undefined)
  t.equal(resolve(COMMANDS, ['site', '--config', 'x'])?.sub, undefined)
  t.equal(resolve(COMMANDS, ['site', 'status'])?.sub?.name, 'status')
  t.equal(resolve(COMMANDS, ['migrate', 'status'])?.sub, undefined, 'a command without sub-commands takes its words as arguments')
  t.ok(asksForHelp(['status', '--help']))
  t.ok(asksForHelp(['-h']))
  t.notOk(asksForHelp(['--config', 'x']))
  t.notOk(asksForHelp(['--', '--help']), 'after --, --help is an argument')
})

t.test('exit codes come from error codes, in one table', async (t) => {
  const coded = (code: unknown) => Object.assign(new Error('x'), { code })
  t.equal(exitCodeOf(coded('usage')), EXIT.USAGE)
  t.equal(exitCodeOf(coded('ERR_PARSE_ARGS_UNKNOWN_OPTION')), EXIT.USAGE, 'node:util parseArgs refusals')
  t.equal(exitCodeOf(coded('bad-config')), EXIT.CONFIG, 'the site config')
  t.equal(exitCodeOf(coded('CONFIG_INVALID')), EXIT.CONFIG, 'the agent config')
  t.equal(exitCodeOf(coded('ENOENT')), EXIT.FAILURE)
  t.equal(exitCodeOf(coded('toString')), EXIT.FAILURE, 'only the table\'s own keys')
  t.equal(exitCodeOf(new Error('plain')), EXIT.FAILURE)
  t.equal(exitCodeOf('a string'), EXIT.FAILURE)
  t.equal(exitCodeOf(null), EXIT.FAILURE)
  t.equal(new Set(Object.values(EXIT)).size, Object.keys(EXIT).length, 'no two names share a status')
})
