import { createRequire } from 'node:module'
import type { FuseOperations } from 'fuse-native'

/** What fuse-native's native part calls for one operation: its thread's handle, the opcode, the operation's arguments. */
export type NativeHandler = (nativeHandle: unknown, opcode: number, ...args: any[]) => void
type NativeSignal = (nativeHandle: unknown, code: number, ...values: unknown[]) => void

/**
 * fuse-native's native binding, the instance fuse-native itself loaded (node-gyp-build caches it
 * by path), loaded through fuse-native's own dependency so both agree on the file.
 */
const fuseNativeRequire = createRequire(require.resolve('fuse-native'))
const binding = fuseNativeRequire('node-gyp-build')(fuseNativeRequire.resolve('fuse-native/package.json').replace(/\/package\.json$/, '')) as
  Record<string, NativeSignal | number>

const signal = (name: string) => binding[`fuse_native_signal_${name}`] as NativeSignal
const opcode = (name: string) => binding[`op_${name}`] as number

/**
 * Handlers for the four operations every KPI write makes (OPEN, WRITE, FLUSH, RELEASE) that answer
 * the FUSE thread directly. fuse-native's generic handler copies the arguments twice, binds a
 * signal function and answers through process.nextTick; at thousands of closes a second that is
 * a measurable share of the main thread (bench/guestfs-profile). The answers keep fuse-native's
 * shapes: open and create answer (code, handle), write (byte count or -errno, 0, the buffer it
 * detaches), flush and release (code). Every other operation keeps fuse-native's handler.
 */
export function directHandlers (ops: FuseOperations): Map<number, NativeHandler> {
  const handlers = new Map<number, NativeHandler>()
  const withHandle = (name: 'open' | 'create') => {
    const answer = signal(name)
    const operation = ops[name]
    if (operation) {
      handlers.set(opcode(name), (native, _op, path: string, flagsOrMode: number) => {
        operation(path, flagsOrMode, (code: number, fd?: number) => answer(native, code, fd ?? 0))
      })
    }
  }
  withHandle('open')
  withHandle('create')
  const write = ops.write
  if (write) {
    const answer = signal('write')
    handlers.set(opcode('write'), (native, _op, path: string, fd: number, buffer: Buffer, length: number, low: number, high: number) => {
      write(path, fd, buffer, length, high * 4294967296 + low, (count: number) => answer(native, count, 0, buffer.buffer))
    })
  }
  for (const name of ['flush', 'release'] as const) {
    const answer = signal(name)
    const operation = ops[name]
    if (operation) handlers.set(opcode(name), (native, _op, path: string, fd: number) => operation(path, fd, (code: number) => answer(native, code)))
  }
  return handlers
}
