/**
 * libsodium's crypto_box_SEALBYTES: an ephemeral public key and a MAC. Nothing shorter is a sealed
 * box. In a file of its own so guestfs can check a sealed value's size without loading libsodium.
 */
export const SEALED_BOX_OVERHEAD = 48
