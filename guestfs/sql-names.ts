/** SQLite compares identifiers ignoring ASCII case only, so names are folded the same way. */
export function foldCase (name: string): string {
  return name.replace(/[A-Z]+/g, (upper) => upper.toLowerCase())
}

/** A double-quoted SQL identifier: safe for any string, SQL metacharacters included. */
export function quoteIdentifier (name: string): string {
  return `"${name.replace(/"/g, '""')}"`
}
