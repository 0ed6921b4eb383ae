import { DescriptorFormatError } from './errors'
import { ovfToDescriptor } from './read-ovf'

/** A descriptor file is OVF when it is XML (DESIGN Contract 3's second form); JSON cannot start with `<`. */
export function isOvf (text: string): boolean {
  return text.trimStart().startsWith('<')
}

/**
 * A descriptor file's content as JSON, from either form. `source` (the file) leads every message;
 * checking the result against the descriptor schema is the caller's (agent/descriptor holds it).
 */
export function readDescriptorDocument (text: string, source: string): unknown {
  if (!isOvf(text)) {
    try {
      return JSON.parse(text)
    } catch (err) {
      throw new DescriptorFormatError(source, `neither JSON nor an OVF envelope: ${(err as Error).message}`, { cause: err })
    }
  }
  try {
    return ovfToDescriptor(text).descriptor
  } catch (err) {
    throw err instanceof DescriptorFormatError ? err.in(source) : err
  }
}
