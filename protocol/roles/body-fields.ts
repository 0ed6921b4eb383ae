import { ProtocolError } from '../errors'
import { isSafeFileName } from '../../host/vm-folder/vm-folder'

/** Field readers for request bodies: a missing or malformed field is a bad-request naming it. */
export function objectBody (body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ProtocolError('bad-request', 'body must be an object')
  return body as Record<string, unknown>
}

export function vmIdField (body: Record<string, unknown>): string {
  const vmId = body.vmId
  if (typeof vmId !== 'string' || !isSafeFileName(vmId) || vmId.length > 128) throw new ProtocolError('bad-request', 'vmId must be a plain name (letters, digits, ._+-)')
  return vmId
}

/** The VM descriptor a request carries: an object, or absent (null). */
export function descriptorField (body: Record<string, unknown>): Record<string, unknown> | null {
  const value = body.descriptor
  if (value === undefined || value === null) return null
  if (typeof value !== 'object' || Array.isArray(value)) throw new ProtocolError('bad-request', 'descriptor must be an object (the VM descriptor)')
  return value as Record<string, unknown>
}

export function stringField (body: Record<string, unknown>, name: string, maxLength = 4096): string {
  const value = body[name]
  if (typeof value !== 'string' || value === '' || value.length > maxLength) throw new ProtocolError('bad-request', `${name} must be a non-empty string`)
  return value
}

export function stringListField (body: Record<string, unknown>, name: string): string[] {
  const value = body[name] ?? []
  if (!Array.isArray(value) || value.length > 64 || !value.every((v) => typeof v === 'string')) throw new ProtocolError('bad-request', `${name} must be a list of site ids`)
  return value as string[]
}
