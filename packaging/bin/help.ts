import type { Command, Help, SubCommand } from './commands'

/** The command and, when the first word after it names one, its sub-command. */
export interface Resolved {
  command: Command
  sub?: SubCommand
}

export function resolve (commands: readonly Command[], words: readonly string[]): Resolved | undefined {
  const command = commands.find((candidate) => candidate.name === words[0])
  if (command === undefined) return undefined
  const sub = command.subcommands?.find((candidate) => candidate.name === words[1])
  return sub === undefined ? { command } : { command, sub }
}

/** `fedvm --help`: every command with its summary and usage line. */
export function overview (commands: readonly Command[], version: string): string {
  const width = Math.max(...commands.map((command) => command.name.length))
  const lines = commands.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}\n  ${' '.repeat(width)}  ${command.usage}`)
  return `fedvm ${version}: monitoring and migration of VMs in federated clouds\n\nCommands:\n${lines.join('\n')}\n\n` +
    'fedvm help COMMAND [SUB-COMMAND] (or fedvm COMMAND [SUB-COMMAND] --help) shows its options and an example.\n'
}

/**
 * `fedvm help COMMAND [SUB-COMMAND]`: usage, summary, options and an example. A command with several
 * sub-commands lists them (each usage and summary) before its example; one sub-command is shown in full.
 */
export function commandHelp ({ command, sub }: Resolved): string {
  const subs = command.subcommands ?? []
  if (sub !== undefined || subs.length === 1) return entry(sub ?? subs[0])
  if (subs.length === 0) return entry(command)
  const width = Math.max(...subs.map((s) => s.name.length))
  const list = subs.map((s) => `  ${s.name.padEnd(width)}  ${s.usage}\n  ${' '.repeat(width)}  ${s.summary}\n`).join('')
  return `usage: ${command.usage}\n${command.summary}\n\nSub-commands:\n${list}\nExample:\n  ${command.example}\n\n` +
    `fedvm help ${command.name} SUB-COMMAND (or fedvm ${command.name} SUB-COMMAND --help) shows its options and an example.\n`
}

function entry (help: Help): string {
  const width = Math.max(0, ...(help.options ?? []).map(([flag]) => flag.length))
  const options = (help.options ?? []).map(([flag, text]) => `  ${flag.padEnd(width)}  ${text}\n`).join('')
  return `usage: ${help.usage}\n${help.summary}\n${options === '' ? '' : `\nOptions:\n${options}`}\nExample:\n  ${help.example}\n`
}

/** What a usage error prints after its message: one usage line, for the command line that was used. */
export function usageLine ({ command, sub }: Resolved): string {
  const help = sub ?? (command.subcommands?.length === 1 ? command.subcommands[0] : command)
  const words = sub === undefined ? command.name : `${command.name} ${sub.name}`
  return `usage: ${help.usage}\n(fedvm help ${words}: options and an example)\n`
}

/** Whether the words ask for help (before a `--` that ends the options). */
export function asksForHelp (words: readonly string[]): boolean {
  const end = words.indexOf('--')
  return (end === -1 ? words : words.slice(0, end)).some((word) => word === '--help' || word === '-h')
}
