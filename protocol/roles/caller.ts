import type { VerifiedRequest } from '../envelope/verify-request'

/** Who is asking: the verified sender of a request, or this site itself (the Controller runs in-process). */
export interface Caller {
  sender: string
  verified?: VerifiedRequest
}
