/**
 * Framing and constants of libvirt's remote protocol (src/rpc/virnetprotocol.x and
 * src/remote/remote_protocol.x): every message is a 4-byte total length, a 24-byte header, then
 * the XDR body. Only the procedures fedvm calls are listed.
 */
import { HypervisorError } from '../../errors'

export const REMOTE_PROGRAM = 0x20008086
export const REMOTE_PROTOCOL_VERSION = 1

export const Proc = {
  CONNECT_OPEN: 1,
  CONNECT_CLOSE: 2,
  DOMAIN_GET_XML_DESC: 14,
  DOMAIN_GET_INFO: 16,
  DOMAIN_GET_VCPUS: 20,
  DOMAIN_LOOKUP_BY_UUID: 24,
  AUTH_POLKIT: 60,
  AUTH_LIST: 66,
  DOMAIN_GET_CONTROL_INFO: 229,
  CONNECT_LIST_ALL_DOMAINS: 273,
  CONNECT_GET_ALL_DOMAIN_STATS: 344
} as const

export const MessageType = { CALL: 0, REPLY: 1, MESSAGE: 2, STREAM: 3 } as const
export const MessageStatus = { OK: 0, ERROR: 1, CONTINUE: 2 } as const

/** libvirt's largest message (VIR_NET_MESSAGE_MAX, 32 MiB): a bigger length means a broken stream. */
export const MESSAGE_MAX = 32 * 1024 * 1024
export const HEADER_BYTES = 24

/** virErrorNumber values fedvm reacts to. */
export const VIR_ERR_NO_DOMAIN = 42

export interface MessageHeader {
  prog: number
  vers: number
  proc: number
  type: number
  serial: number
  status: number
}

export function encodeCall (proc: number, serial: number, body: Buffer): Buffer {
  const msg = Buffer.allocUnsafe(4 + HEADER_BYTES + body.length)
  msg.writeUInt32BE(msg.length, 0)
  msg.writeUInt32BE(REMOTE_PROGRAM, 4)
  msg.writeUInt32BE(REMOTE_PROTOCOL_VERSION, 8)
  msg.writeInt32BE(proc, 12)
  msg.writeInt32BE(MessageType.CALL, 16)
  msg.writeUInt32BE(serial, 20)
  msg.writeInt32BE(MessageStatus.OK, 24)
  body.copy(msg, 28)
  return msg
}

/** Reads the header of one whole message (length prefix included). */
export function decodeHeader (msg: Buffer): MessageHeader {
  if (msg.length < 4 + HEADER_BYTES) throw new HypervisorError('PROTOCOL', `message of ${msg.length} bytes is shorter than a header`)
  return {
    prog: msg.readUInt32BE(4),
    vers: msg.readUInt32BE(8),
    proc: msg.readInt32BE(12),
    type: msg.readInt32BE(16),
    serial: msg.readUInt32BE(20),
    status: msg.readInt32BE(24)
  }
}
