/**
 * The slice of XDR (RFC 4506) libvirt's remote protocol uses: big-endian 4-byte units, strings and
 * opaques padded to 4 bytes, 64-bit "hyper"s. Hand-written because the few types needed here are
 * shorter than a schema for a generic XDR library, and the reader is on the hot path.
 */
import { HypervisorError } from '../../errors'

export class XdrReader {
  private offset: number

  constructor (private readonly buf: Buffer, start = 0) {
    this.offset = start
  }

  get remaining (): number { return this.buf.length - this.offset }

  private need (n: number): void {
    if (this.offset + n > this.buf.length) {
      throw new HypervisorError('PROTOCOL', `XDR: need ${n} bytes at offset ${this.offset}, message has ${this.buf.length}`)
    }
  }

  int (): number { this.need(4); const v = this.buf.readInt32BE(this.offset); this.offset += 4; return v }
  uint (): number { this.need(4); const v = this.buf.readUInt32BE(this.offset); this.offset += 4; return v }
  bool (): boolean { return this.int() !== 0 }
  double (): number { this.need(8); const v = this.buf.readDoubleBE(this.offset); this.offset += 8; return v }

  /** 64-bit values as JS numbers: exact below 2^53, beyond that only the lowest bits round (fine for metrics). */
  hyper (): number {
    this.need(8)
    const hi = this.buf.readInt32BE(this.offset)
    const lo = this.buf.readUInt32BE(this.offset + 4)
    this.offset += 8
    return hi * 4294967296 + lo
  }

  uhyper (): number {
    this.need(8)
    const hi = this.buf.readUInt32BE(this.offset)
    const lo = this.buf.readUInt32BE(this.offset + 4)
    this.offset += 8
    return hi * 4294967296 + lo
  }

  fixedOpaque (n: number): Buffer {
    this.need(n)
    const v = this.buf.subarray(this.offset, this.offset + n)
    this.offset += (n + 3) & ~3
    return v
  }

  string (max = 4194304): string {
    const n = this.uint()
    if (n > max) throw new HypervisorError('PROTOCOL', `XDR: string of ${n} bytes exceeds ${max}`)
    this.need(n)
    const v = this.buf.toString('utf8', this.offset, this.offset + n)
    this.offset += (n + 3) & ~3
    return v
  }

  /** remote_string: a pointer (0/1) then the string. */
  optionalString (): string | null {
    return this.bool() ? this.string() : null
  }

  /** A variable-length array's count, refused above `max` before anything is allocated. */
  count (max: number): number {
    const n = this.uint()
    if (n > max) throw new HypervisorError('PROTOCOL', `XDR: array of ${n} items exceeds ${max}`)
    return n
  }
}

export class XdrWriter {
  private readonly parts: Buffer[] = []

  int (v: number): this { const b = Buffer.allocUnsafe(4); b.writeInt32BE(v); this.parts.push(b); return this }
  uint (v: number): this { const b = Buffer.allocUnsafe(4); b.writeUInt32BE(v >>> 0); this.parts.push(b); return this }

  fixedOpaque (v: Buffer): this {
    this.parts.push(v)
    const pad = (4 - (v.length % 4)) % 4
    if (pad > 0) this.parts.push(Buffer.alloc(pad))
    return this
  }

  string (v: string): this {
    const bytes = Buffer.from(v, 'utf8')
    this.uint(bytes.length)
    return this.fixedOpaque(bytes)
  }

  optionalString (v: string | null): this {
    if (v === null) return this.int(0)
    return this.int(1).string(v)
  }

  toBuffer (): Buffer { return Buffer.concat(this.parts) }
}
