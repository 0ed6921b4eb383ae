export { registerCollectors, type RegisterOptions, type RegisteredCollectors } from './register-collectors'
export { runCollectors, type CollectorOutcome } from './run-collectors'
export { CollectError, type CollectErrorCode } from './errors'
