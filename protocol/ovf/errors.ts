/**
 * A descriptor file the converter refuses: a malformed OVF envelope, or a file in neither form. `element`
 * names where (`Envelope/VirtualSystem/@ovf:id`); the code is the one every refused descriptor has, so the
 * fedvm command exits as for any invalid descriptor (packaging/bin/exit-codes.ts).
 */
export class DescriptorFormatError extends Error {
  readonly code = 'DESCRIPTOR_INVALID'

  constructor (readonly element: string, readonly problem: string, options?: { cause?: unknown }) {
    super(`${element}: ${problem}`, options)
    this.name = 'DescriptorFormatError'
  }

  /** The same error with the file it was found in put before the element. */
  in (source: string): DescriptorFormatError {
    return new DescriptorFormatError(`${source}: ${this.element}`, this.problem, { cause: this })
  }
}
