/**
 * Where each field of a descriptor read from an envelope came from, so a message about a field (the
 * descriptor schema's `monitoring[1].function`) names the element a user edits instead.
 */
export class Origins {
  private readonly places = new Map<string, string>()

  constructor (private readonly root: string) {}

  record (field: readonly PropertyKey[], where: string): void {
    this.places.set(key(field), where)
  }

  /** The element of the longest recorded prefix of `field`; the root element when none is recorded. */
  elementOf (field: readonly PropertyKey[]): string {
    for (let length = field.length; length > 0; length--) {
      const where = this.places.get(key(field.slice(0, length)))
      if (where !== undefined) return where
    }
    return this.root
  }
}

function key (field: readonly PropertyKey[]): string {
  return JSON.stringify(field.map(String))
}
