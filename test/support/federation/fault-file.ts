import type { Federation } from '../../protocol/support/federation'

/**
 * Starts sites, each reading its armed fault point (protocol/roles/fault-point.ts) from its own file,
 * so a test arms a running daemon by writing that file. A daemon inherits the test's environment
 * when it is spawned, which Federation.start does synchronously: the variable is set only around
 * each call.
 */
export async function startWithFaultFile (fed: Federation, ids: string[], fileOf: (id: string) => string): Promise<void> {
  const starting: Array<Promise<void>> = []
  try {
    for (const id of ids) {
      process.env.FEDVM_FAULT_POINT_FILE = fileOf(id)
      starting.push(fed.start(id))
    }
  } finally {
    delete process.env.FEDVM_FAULT_POINT_FILE
  }
  await Promise.all(starting)
}
