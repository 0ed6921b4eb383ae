// Preloaded with NODE_OPTIONS="--require …/clock-offset.cjs" and FEDVM_TEST_CLOCK_OFFSET_MS=N: the
// process's wall clock (Date.now, new Date()) runs N ms ahead of the machine's, as a site with a
// skewed clock would. Only tests use it.
'use strict'
const offset = Number(process.env.FEDVM_TEST_CLOCK_OFFSET_MS ?? 0)
if (Number.isFinite(offset) && offset !== 0) {
  const RealDate = Date
  const realNow = RealDate.now
  class SkewedDate extends RealDate {
    constructor (...args) {
      if (args.length === 0) super(realNow() + offset)
      else super(...args)
    }

    static now () {
      return realNow() + offset
    }
  }
  globalThis.Date = SkewedDate
}
