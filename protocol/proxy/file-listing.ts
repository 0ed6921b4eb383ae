import { ProtocolError } from '../errors'
import { isSafeFileName } from '../../host/vm-folder/vm-folder'
import { HEX64, MAX_FILES } from './manifest'
import { chunkCount } from './transfer-plan'

/**
 * What a destination proxy learns before pulling: the files of the transfer, their sizes, and the
 * chunk digests the source already computed (null where it has not read the chunk yet). A resumed
 * transfer reuses a chunk on disk only where its digest is known here.
 */
export const MAX_CHUNK_BYTES = 64 * 1024 * 1024

export interface FileListing {
  vmId: string
  chunkBytes: number
  files: Array<{ name: string, size: number, chunks: Array<string | null> }>
}

/** A listing received from another proxy: every field checked, every name confined to the VM directory. */
export function parseListing (value: unknown, vmId: string): FileListing {
  const bad = (detail: string): never => { throw new ProtocolError('bad-manifest', detail) }
  if (typeof value !== 'object' || value === null) bad('the file listing is not an object')
  const m = value as Record<string, unknown>
  if (m.vmId !== vmId) bad('the file listing is for another VM')
  // Bounded: the destination holds a few chunks in memory at once.
  if (!Number.isSafeInteger(m.chunkBytes) || (m.chunkBytes as number) < 4096 || (m.chunkBytes as number) > MAX_CHUNK_BYTES) bad(`chunkBytes must be an integer from 4096 to ${MAX_CHUNK_BYTES}`)
  const chunkBytes = m.chunkBytes as number
  if (!Array.isArray(m.files) || m.files.length > MAX_FILES) bad(`files must be a list of at most ${MAX_FILES}`)
  const names = new Set<string>()
  const files = (m.files as unknown[]).map((entry, i) => {
    const f = (typeof entry === 'object' && entry !== null ? entry : {}) as Record<string, unknown>
    if (typeof f.name !== 'string' || !isSafeFileName(f.name)) bad(`files[${i}].name is not a plain file name`)
    if (names.has(f.name as string)) bad(`files[${i}].name appears twice`)
    names.add(f.name as string)
    if (!Number.isSafeInteger(f.size) || (f.size as number) < 0) bad(`files[${i}].size must be a byte count`)
    const expected = chunkCount(f.size as number, chunkBytes)
    if (!Array.isArray(f.chunks) || f.chunks.length !== expected || !f.chunks.every((c) => c === null || (typeof c === 'string' && HEX64.test(c)))) {
      bad(`files[${i}].chunks must hold ${expected} SHA-256 digests or nulls`)
    }
    return { name: f.name as string, size: f.size as number, chunks: f.chunks as Array<string | null> }
  })
  return { vmId, chunkBytes, files }
}
