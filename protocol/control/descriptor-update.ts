import type { ResourceOutcome } from '../../host/vm-folder/vm-control'
import type { VmHost } from '../../host/vm-folder/vm-host'
import { ProtocolError } from '../errors'
import type { Caller } from '../roles/caller'
import { objectBody, vmIdField } from '../roles/body-fields'
import { passAlong } from '../roles/intermediary'
import { demandOf } from '../roles/room'
import { DescriptorUpdateAnswerSchema, type DescriptorUpdateAnswer } from './control-answers'
import { checkOrigin, controlStep, type ControlDeps } from './control-route'
import { applyChange, descriptorVersion, primarySiteOf, readChange, type DescriptorChange } from './descriptor-version'

/**
 * Descriptor update (the paper's Control interface): a new descriptor, or a patch of its monitoring
 * specifiers and resources, with the version it makes. Each site on the way refuses a version not
 * above the newest it knows, passes the update on unchanged, and keeps the descriptor the VM's host
 * answers with; nothing changes anywhere when the update is refused.
 */
export async function handleDescriptorUpdate (deps: ControlDeps, caller: Caller, rawBody: unknown): Promise<DescriptorUpdateAnswer> {
  const body = objectBody(rawBody)
  const vmId = vmIdField(body)
  const change = readChange(body)
  const step = controlStep(deps, caller, vmId)
  refuseStale(descriptorVersion(step.record.descriptor), change.version)
  const answer = 'partner' in step
    ? await passAlong(deps, caller, step.partner, 'descriptor-update', body, DescriptorUpdateAnswerSchema)
    : await oneAtATime(`${step.host.id}/${vmId}`, async () => await applyAtHost(deps, caller, step.host, vmId, step.record.descriptor, change))
  keepNewest(deps, vmId, answer.descriptor)
  deps.log({ event: 'descriptor-updated', vm: vmId, version: answer.version, from: caller.sender })
  return answer
}

/** The host's descriptor is the one in force: the version is checked against it, and the change made to it. */
async function applyAtHost (deps: ControlDeps, caller: Caller, host: VmHost, vmId: string, recorded: unknown, change: DescriptorChange): Promise<DescriptorUpdateAnswer> {
  if (host.readDescriptor === undefined || host.writeDescriptor === undefined) {
    throw new ProtocolError('unsupported-vm', 'this site\'s host keeps no descriptor beside the VM')
  }
  const current = (await host.readDescriptor(vmId)) ?? recorded
  checkOrigin(deps, caller, primarySiteOf(current))
  refuseStale(descriptorVersion(current), change.version)
  const next = applyChange(current, change)
  await host.writeDescriptor(vmId, next)
  const resources = await changeResources(host, vmId, current, next)
  return { outcome: 'applied', vmId, version: change.version, descriptor: next, ...(resources === undefined ? {} : { resources }) }
}

/** A changed `resources` is applied to the running VM where the host can, and says so where it cannot. */
async function changeResources (host: VmHost, vmId: string, before: unknown, after: unknown): Promise<ResourceOutcome | undefined> {
  const old = demandOf(before)
  const wanted = demandOf(after)
  const changed = Object.fromEntries((['memoryMiB', 'vcpus'] as const).filter((k) => wanted[k] !== undefined && wanted[k] !== old[k]).map((k) => [k, wanted[k]]))
  if (Object.keys(changed).length === 0) return undefined
  if (host.applyResources !== undefined) return host.applyResources(vmId, changed)
  const detail = 'recorded in the descriptor; this host runs no hypervisor to change'
  return Object.fromEntries(Object.keys(changed).map((k) => [k, { applied: false, detail }]))
}

/**
 * Updates of one VM on one host, one after the other: each reads the version in force after the one
 * before it wrote, so two updates at once cannot both pass the version check.
 */
const applying = new Map<string, Promise<unknown>>()

async function oneAtATime<T> (key: string, apply: () => Promise<T>): Promise<T> {
  const before = applying.get(key) ?? Promise.resolve()
  const mine = before.catch(() => {}).then(apply)
  applying.set(key, mine)
  try {
    return await mine
  } finally {
    if (applying.get(key) === mine) applying.delete(key)
  }
}

function refuseStale (known: number, version: number): void {
  if (version <= known) throw new ProtocolError('stale-version', `version ${version} is not newer than the descriptor's version ${known}`)
}

/** The descriptor that came back is kept unless a newer one arrived meanwhile; the record's version stays (it tracks where the VM is). */
function keepNewest (deps: ControlDeps, vmId: string, descriptor: Record<string, unknown>): void {
  const record = deps.locations.location(vmId)
  if (record === undefined || descriptorVersion(record.descriptor) >= descriptorVersion(descriptor)) return
  deps.locations.setLocation({ ...record, descriptor })
}
