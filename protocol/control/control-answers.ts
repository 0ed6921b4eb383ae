import { z } from 'zod'
import { RUN_ACTIONS } from '../../host/vm-folder/vm-control'

const Applied = z.object({ applied: z.boolean(), detail: z.string().max(500) }).strict()

/** What the site running the VM answers a descriptor update, passed back up the chain as it is. */
export const DescriptorUpdateAnswerSchema = z.object({
  outcome: z.literal('applied'),
  vmId: z.string(),
  version: z.number().int().min(1),
  /** The descriptor now in force: every site on the way back keeps it (the newest one travels with the VM). */
  descriptor: z.record(z.string(), z.unknown()),
  resources: z.object({ memoryMiB: Applied.optional(), vcpus: Applied.optional() }).strict().optional(),
}).strict()

export type DescriptorUpdateAnswer = z.infer<typeof DescriptorUpdateAnswerSchema>

/** What the site running the VM answers a run-state change. */
export const RunStateAnswerSchema = z.object({
  outcome: z.literal('done'),
  vmId: z.string(),
  action: z.enum(RUN_ACTIONS),
  state: z.enum(['running', 'paused', 'shut-off']),
}).strict()

export type RunStateAnswer = z.infer<typeof RunStateAnswerSchema>
