// The part of fuse-native (which ships no types) that guestfs uses.
declare module 'fuse-native' {
  type Callback = (code: number, ...values: unknown[]) => void
  export type FuseOperations = Record<string, (...args: any[]) => void>

  export interface FuseOptions {
    timeout?: number | false
    allowOther?: boolean
    fsname?: string
    subtype?: string
    entryTimeout?: number
    attrTimeout?: number
    debug?: boolean
  }

  class Fuse {
    constructor (mountpoint: string, ops: FuseOperations, options?: FuseOptions)
    readonly mnt: string
    mount (cb: (err: Error | null) => void): void
    unmount (cb: (err: Error | null) => void): void
    protected _fuseOptions (): string
    static unmount (mountpoint: string, cb: (err: Error | null) => void): void
  }
  export type { Callback }
  export default Fuse
}
