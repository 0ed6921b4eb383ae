export { registerCollectors, type RegisterOptions, type RegisteredCollectors } from './register-collectors.js'
export { runCollectors, type CollectorOutcome } from './run-collectors.js'
export { CollectError, type CollectErrorCode } from './errors.js'
