import { readFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { UsageError } from '../errors'
import { readDescriptorDocument } from '../ovf/descriptor-document'
import { askOwnDaemon } from '../site/site-command'
import { loadSiteConfig } from '../site/load-config'
import { RUN_ACTIONS } from '../../host/vm-folder/vm-control'

const OPTIONS = {
  config: { type: 'string' },
  vm: { type: 'string' },
  descriptor: { type: 'string' },
  patch: { type: 'string' },
  version: { type: 'string' },
  'memory-mib': { type: 'string' },
  vcpus: { type: 'string' },
} as const

/**
 * `fedvm vm update|shutdown|start|suspend|resume --config SITE.json --vm ID`: the Control interface
 * from this site (the VM's primary, or a site on its chain where policy allows). The site's daemon
 * sends it down the chain to the site running the VM and the outcome is printed as JSON.
 * `update` takes a whole descriptor (`--descriptor FILE`, JSON or OVF), a patch (`--patch FILE`:
 * `{monitoring?, resources?}`), or `--memory-mib N` / `--vcpus N`; `--version N` (default: one
 * above the newest this site knows).
 */
export async function run (argv: string[]): Promise<void> {
  const [sub, ...rest] = argv
  const actions = ['update', ...RUN_ACTIONS]
  if (sub === undefined || !actions.includes(sub)) {
    throw new UsageError(sub === undefined ? `a sub-command is missing (${actions.join(', ')})` : `unknown vm sub-command ${JSON.stringify(sub)}`)
  }
  const { values } = parseArgs({ args: rest, options: OPTIONS })
  if (!values.config) throw new UsageError('--config FILE is required')
  if (!values.vm) throw new UsageError('--vm ID is required')
  const config = await loadSiteConfig(values.config)
  if (sub !== 'update') return askOwnDaemon(config, 'admin-run-state', { vmId: values.vm, action: sub })
  return askOwnDaemon(config, 'admin-descriptor-update', { vmId: values.vm, ...await updateFields(values) })
}

async function updateFields (values: { [K in keyof typeof OPTIONS]?: string }): Promise<Record<string, unknown>> {
  const version = values.version === undefined ? undefined : positiveInteger(values.version, '--version')
  const resources = {
    ...(values['memory-mib'] === undefined ? {} : { memoryMiB: positiveInteger(values['memory-mib'], '--memory-mib') }),
    ...(values.vcpus === undefined ? {} : { vcpus: positiveInteger(values.vcpus, '--vcpus') }),
  }
  const given = [values.descriptor, values.patch, Object.keys(resources).length > 0 ? 'resources' : undefined].filter((v) => v !== undefined)
  if (given.length !== 1) throw new UsageError('give one of --descriptor FILE, --patch FILE, or --memory-mib N / --vcpus N')
  const fields: Record<string, unknown> = version === undefined ? {} : { version }
  if (values.descriptor !== undefined) return { ...fields, descriptor: readDescriptorDocument(await readFile(values.descriptor, 'utf8'), values.descriptor) }
  if (values.patch !== undefined) return { ...fields, patch: readDescriptorDocument(await readFile(values.patch, 'utf8'), values.patch) }
  return { ...fields, patch: { resources } }
}

function positiveInteger (text: string, flag: string): number {
  if (!/^[1-9][0-9]{0,8}$/.test(text)) throw new UsageError(`${flag} must be a positive integer`)
  return Number(text)
}
