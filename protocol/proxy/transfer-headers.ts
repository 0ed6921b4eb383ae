/** The data channel's own HTTP headers, shared by the source proxy, the puller and a relaying proxy. */

/** The transfer token a request is made under. */
export const TOKEN_HEADER = 'fedvm-token'
/** A served chunk's SHA-256, computed as the source read it for sending. */
export const DIGEST_HEADER = 'fedvm-sha256'
/** Present on a chunk of zeros: no bytes follow, the destination leaves a hole. */
export const ZERO_HEADER = 'fedvm-zero'
