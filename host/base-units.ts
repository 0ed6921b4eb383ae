/**
 * libvirt's units turned into the base units every exported value uses (seconds, bytes).
 *
 * Nanoseconds become seconds by dividing by 1e9, never by multiplying with 1e-9: 1e-9 has no exact
 * binary form, so the product carries its rounding error into the printed value (967795000 × 1e-9
 * prints 0.9677950000000001), while the quotient of two exact numbers is the double nearest the
 * exact decimal, which prints as that decimal (0.967795) whenever the decimal fits in a double's
 * 15 significant digits, and as the shortest text that reads back to the same double otherwise.
 * Sums are taken in nanoseconds and divided once, for the same reason.
 */
const NS_PER_SECOND = 1e9
const BYTES_PER_KIB = 1024

export function nsToSeconds (ns: number): number {
  return ns / NS_PER_SECOND
}

/** Exact: a product with a power of two only moves the exponent. */
export function kibToBytes (kib: number): number {
  return kib * BYTES_PER_KIB
}
