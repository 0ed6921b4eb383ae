// Reads tap's output on stdin and prints tap's own closing totals, `# { total: N, pass: P, fail: F, … }`,
// as the line CI reads: "P passed, F failed[, S skipped]". No totals line (tap crashed) is a failure.
'use strict'
let text = ''
process.stdin.setEncoding('utf8')
process.stdin.on('data', (chunk) => { text += chunk })
process.stdin.on('end', () => {
  const lines = text.split('\n').filter((line) => /^# \{ total: \d+/.test(line))
  if (lines.length === 0) {
    process.stdout.write('0 passed, 1 failed\n')
    process.exitCode = 1
    return
  }
  const count = (name) => Number((new RegExp(`\\b${name}: (\\d+)`).exec(lines[lines.length - 1]) || [])[1] || 0)
  const skipped = count('skip') + count('todo')
  const tail = skipped ? `, ${skipped} skipped` : ''
  process.stdout.write(`${count('pass')} passed, ${count('fail')} failed${tail}\n`)
})
