// snappyjs ships no types: the two calls fedvm uses (raw Snappy block format, as remote write wants it).
declare module 'snappyjs' {
  export function compress (input: Uint8Array): Uint8Array
  export function uncompress (input: Uint8Array): Uint8Array
}
