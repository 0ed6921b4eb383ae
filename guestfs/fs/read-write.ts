import type { GuestfsState } from './guestfs-state'
import { filePath } from './paths'

export function read (state: GuestfsState, _path: string, fd: number, buffer: Buffer, length: number, position: number): number {
  const content = state.openFiles.get(fd).content()
  if (position >= content.length) return 0
  return content.copy(buffer, 0, position, Math.min(content.length, position + length))
}

export function write (state: GuestfsState, _path: string, fd: number, buffer: Buffer, length: number, position: number): number {
  state.openFiles.get(fd).write(buffer.subarray(0, length), position)
  return length
}

export function ftruncate (state: GuestfsState, _path: string, fd: number, size: number): void {
  state.openFiles.get(fd).truncate(size)
}

/**
 * Truncate by path (O_TRUNC without the atomic_o_trunc mount option, or truncate(1)). A KPI's
 * next sample starts empty anyway, so only a staging file changes.
 */
export function truncate (state: GuestfsState, path: string, size: number): void {
  const { dir, name, staging } = filePath(path)
  const staged = staging ? state.staging.get(dir, name) : undefined
  if (!staged) return
  const content = Buffer.alloc(size)
  staged.content.copy(content, 0, 0, Math.min(size, staged.content.length))
  state.staging.set(dir, name, content)
}
