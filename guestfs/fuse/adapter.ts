import type { FuseOperations } from 'fuse-native'
import { FsError, toFsError } from '../errors'
import type { GuestfsState } from '../fs/guestfs-state'
import type { GuestfsOperations } from '../fs/operations'

type Callback = (code: number, value?: unknown) => void

// read and write answer with the byte count in the code position, not as a value.
const ANSWER_WITH_COUNT = new Set(['read', 'write'])

/**
 * Turns guestfs's operations (return a value or throw an FsError) into fuse-native's callback
 * style (cb(0, value) or cb(-errno)). Anything but an FsError is a bug: logged, answered EIO.
 */
export function adaptOperations (operations: GuestfsOperations, state: GuestfsState): FuseOperations {
  const adapted: FuseOperations = {}
  for (const [name, operation] of Object.entries(operations)) {
    const countAnswer = ANSWER_WITH_COUNT.has(name)
    const run = operation as (state: GuestfsState, ...args: unknown[]) => unknown
    adapted[name] = (...args: unknown[]) => {
      const cb = args.pop() as Callback
      const answer = (value: unknown) => countAnswer ? cb(value as number) : cb(0, value)
      const fail = (err: unknown) => cb(errnoOf(name, err, state))
      let result: unknown
      try {
        result = run(state, ...args)
      } catch (err) {
        return fail(err)
      }
      if (result instanceof Promise) result.then(answer, fail)
      else answer(result)
    }
  }
  return adapted
}

function errnoOf (operation: string, err: unknown, state: GuestfsState): number {
  if (!(err instanceof FsError)) state.log(`${operation} failed unexpectedly: ${err instanceof Error ? err.stack : String(err)}`)
  return toFsError(err).errno
}
