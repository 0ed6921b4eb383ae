// Reads a TAP stream on stdin and prints tap's assertion totals as "N passed, N failed[, N skipped]".
'use strict'
const { Parser } = require('tap-parser')
const parser = new Parser({ flat: true }, (results) => {
  const skipped = (results.skip || 0) + (results.todo || 0)
  const failed = results.fail || 0
  const passed = (results.pass || 0) - skipped
  const tail = skipped ? `, ${skipped} skipped` : ''
  process.stdout.write(`${passed} passed, ${failed} failed${tail}\n`)
})
process.stdin.pipe(parser)
