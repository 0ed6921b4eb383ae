import { createHash } from 'node:crypto'
import { ProtocolError } from '../errors'
import { isSafeFileName } from '../../host/vm-folder/vm-folder'

/**
 * The SHA-256 manifest of a VM's files. Both sides report it as the transfer status, so equal
 * manifests mean byte-equal files. Chunk digests let a resumed or damaged transfer refetch only
 * the chunks that do not match.
 */
export interface ManifestFile {
  name: string
  size: number
  /** SHA-256 over the chunk digests (a hash list): computable from verified chunks without reading the file again. */
  sha256: string
  /** SHA-256 of each `chunkBytes` slice of the file, in order. */
  chunks: string[]
}

export interface Manifest {
  vmId: string
  chunkBytes: number
  files: ManifestFile[]
}

export const HEX64 = /^[0-9a-f]{64}$/
export const MAX_FILES = 1024

const zeroDigests = new Map<number, string>()

/** The SHA-256 of `length` zero bytes: what a hole reads as. */
export function zeroDigest (length: number): string {
  let digest = zeroDigests.get(length)
  if (digest === undefined) {
    digest = createHash('sha256').update(Buffer.alloc(length)).digest('hex')
    zeroDigests.set(length, digest)
  }
  return digest
}

/** The file digest: SHA-256 over the binary chunk digests, in order. */
export function hashList (chunks: string[]): string {
  const h = createHash('sha256')
  for (const c of chunks) h.update(Buffer.from(c, 'hex'))
  return h.digest('hex')
}

/** A manifest received from another proxy: every field checked, every name confined to the VM directory. */
export function parseManifest (value: unknown, vmId: string): Manifest {
  const bad = (detail: string): never => { throw new ProtocolError('bad-manifest', detail) }
  if (typeof value !== 'object' || value === null) bad('the manifest is not an object')
  const m = value as Record<string, unknown>
  if (m.vmId !== vmId) bad('the manifest is for another VM')
  if (!Number.isSafeInteger(m.chunkBytes) || (m.chunkBytes as number) < 4096) bad('chunkBytes must be an integer ≥ 4096')
  const chunkBytes = m.chunkBytes as number
  if (!Array.isArray(m.files) || m.files.length > MAX_FILES) bad(`files must be a list of at most ${MAX_FILES}`)
  const names = new Set<string>()
  const files = (m.files as unknown[]).map((entry, i): ManifestFile => {
    const f = (typeof entry === 'object' && entry !== null ? entry : {}) as Record<string, unknown>
    if (typeof f.name !== 'string' || !isSafeFileName(f.name)) bad(`files[${i}].name is not a plain file name`)
    if (names.has(f.name as string)) bad(`files[${i}].name appears twice`)
    names.add(f.name as string)
    if (!Number.isSafeInteger(f.size) || (f.size as number) < 0) bad(`files[${i}].size must be a byte count`)
    if (typeof f.sha256 !== 'string' || !HEX64.test(f.sha256)) bad(`files[${i}].sha256 must be 64 hex digits`)
    const expectedChunks = Math.ceil((f.size as number) / chunkBytes)
    if (!Array.isArray(f.chunks) || f.chunks.length !== expectedChunks || !f.chunks.every((c) => typeof c === 'string' && HEX64.test(c))) {
      bad(`files[${i}].chunks must hold ${expectedChunks} SHA-256 digests`)
    }
    return { name: f.name as string, size: f.size as number, sha256: f.sha256 as string, chunks: f.chunks as string[] }
  })
  return { vmId, chunkBytes, files }
}

export function manifestBytes (manifest: Manifest): number {
  return manifest.files.reduce((sum, file) => sum + file.size, 0)
}

/** dstat = sstat: same names, sizes and digests, in any order. */
export function manifestsAgree (a: Manifest, b: Manifest): boolean {
  if (a.vmId !== b.vmId || a.files.length !== b.files.length) return false
  const byName = new Map(b.files.map((file) => [file.name, file]))
  return a.files.every((file) => {
    const other = byName.get(file.name)
    return other !== undefined && other.size === file.size && other.sha256 === file.sha256
  })
}
