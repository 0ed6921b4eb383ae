// Reads tap's output on stdin and prints tap's own closing totals, `# { total: N, pass: P, fail: F, … }`,
// as the line CI reads: "P passed, F failed[, S skipped]". No totals line (tap crashed) is a failure.
// Above it, every failed assertion with the test file and subtests it sits in: CI keeps only the end of
// the output, and a count alone does not say what to look at. tap's exit status is the first argument:
// a run tap failed whose totals count no failure (a subtest ended by a broken TAP stream) still says so.
'use strict'
let text = ''
process.stdin.setEncoding('utf8')
process.stdin.on('data', (chunk) => { text += chunk })
process.stdin.on('end', () => {
  const all = text.split('\n')
  const failures = failedAssertions(all)
  if (failures.length > 0) {
    process.stdout.write(`failed assertions (${failures.length}):\n`)
    for (const failure of failures.slice(0, 40)) process.stdout.write(`  ${failure}\n`)
    if (failures.length > 40) process.stdout.write(`  … and ${failures.length - 40} more\n`)
  }
  const lines = all.filter((line) => /^# \{ total: \d+/.test(line))
  if (lines.length === 0) {
    process.stdout.write('0 passed, 1 failed\n')
    process.exitCode = 1
    return
  }
  const count = (name) => Number((new RegExp(`\\b${name}: (\\d+)`).exec(lines[lines.length - 1]) || [])[1] || 0)
  const skipped = count('skip') + count('todo')
  const tail = skipped ? `, ${skipped} skipped` : ''
  const tapFailed = Number(process.argv[2] ?? 0) !== 0
  const failed = tapFailed ? Math.max(count('fail'), failures.length, 1) : count('fail')
  process.stdout.write(`${count('pass')} passed, ${failed} failed${tail}\n`)
})

// The innermost "not ok" lines, each named by the "# Subtest:" headers open above it (by indentation).
function failedAssertions (lines) {
  const open = []
  const found = []
  lines.forEach((line, index) => {
    const subtest = /^(\s*)# Subtest: (.*)$/.exec(line)
    if (subtest) {
      const depth = subtest[1].length
      while (open.length > 0 && open[open.length - 1].depth >= depth) open.pop()
      open.push({ depth, name: subtest[2], foundBefore: found.length })
      return
    }
    const failed = /^(\s*)not ok \d+ - (.*?)(?: # time=.*)?$/.exec(line)
    if (!failed) return
    const depth = failed[1].length
    const next = lines[index + 1] || ''
    // A "not ok" closing a subtest whose failures were listed already is their summary; one with none listed
    // (a timeout, a crash) is the failure itself.
    const own = open.find((entry) => entry.depth === depth && entry.name === failed[2])
    if (own && found.length > own.foundBefore) return
    const path = open.filter((entry) => entry.depth < depth).map((entry) => entry.name)
    const where = /^\s+---/.test(next) ? detailOf(lines, index + 1) : ''
    found.push([...path, failed[2]].join(' > ') + where)
  })
  return found
}

// The "at:" file and line of a failure's YAML block, when tap gave one.
function detailOf (lines, start) {
  for (let index = start + 1; index < Math.min(lines.length, start + 40); index++) {
    if (/^\s+\.\.\.\s*$/.test(lines[index])) break
    const at = /^\s+fileName: (.*)$/.exec(lines[index])
    const lineNumber = /^\s+lineNumber: (\d+)/.exec(lines[index + 1] || '')
    if (at && lineNumber) return ` (${at[1]}:${lineNumber[1]})`
  }
  return ''
}
