import { RUN_ACTIONS, RunStateRefused, type RunAction, type RunState } from '../../host/vm-folder/vm-control'
import { ProtocolError } from '../errors'
import type { Caller } from '../roles/caller'
import { objectBody, vmIdField } from '../roles/body-fields'
import { passAlong } from '../roles/intermediary'
import { RunStateAnswerSchema, type RunStateAnswer } from './control-answers'
import { checkOrigin, controlStep, type ControlDeps } from './control-route'
import { primarySiteOf } from './descriptor-version'

/**
 * Run-state change (the paper's Control interface: "shutting down a running VM or activating a
 * hibernated one"): shutdown, start, suspend or resume, by the same route as a descriptor update.
 * The site whose host runs the VM acts (a libvirt host) or records the state (a directory host).
 */
export async function handleRunStateChange (deps: ControlDeps, caller: Caller, rawBody: unknown): Promise<RunStateAnswer> {
  const body = objectBody(rawBody)
  const vmId = vmIdField(body)
  const action = body.action
  if (typeof action !== 'string' || !(RUN_ACTIONS as readonly string[]).includes(action)) {
    throw new ProtocolError('bad-request', `action must be one of ${RUN_ACTIONS.join(', ')}`)
  }
  const step = controlStep(deps, caller, vmId)
  if ('partner' in step) return passAlong(deps, caller, step.partner, 'run-state', body, RunStateAnswerSchema)
  const host = step.host
  if (host.changeRunState === undefined) throw new ProtocolError('unsupported-vm', 'this site\'s host cannot change a VM\'s run state')
  checkOrigin(deps, caller, primarySiteOf((await host.readDescriptor?.(vmId)) ?? step.record.descriptor))
  let state: RunState
  try {
    state = await host.changeRunState(vmId, action as RunAction)
  } catch (err) {
    if (err instanceof RunStateRefused) throw new ProtocolError('wrong-run-state', err.message, { cause: err })
    throw err
  }
  deps.log({ event: 'run-state-changed', vm: vmId, action, state, from: caller.sender })
  return { outcome: 'done', vmId, action: action as RunAction, state }
}
