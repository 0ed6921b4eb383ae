/** uPlot's browser build (served at /uplot.js) defines this global. */
declare const uPlot: any

/**
 * The page's script. It runs in the browser, not in Node: the server sends its source text
 * (`PAGE_SCRIPT`), so it uses nothing from outside its own body. Written here rather than as a
 * loose .js file so the compiler checks it and the program needs no extra files beside dist/.
 *
 * Every second it reads /api/overview and each listed VM's /api/kpis, then redraws the tables and
 * feeds each chart its points. Text goes in with textContent only: VM, rule and metric names are
 * data, never markup. `window.fedvmDashboard.charts` holds the uPlot objects (key VM␀metric␀selector)
 * for whoever inspects the page.
 */
function runDashboard (): void {
  const POLL_MS = 1000
  const charts = new Map<string, any>()
  const state = { polls: 0, lastError: '' }
  ;(window as any).fedvmDashboard = { charts, state }

  const byId = (id: string): HTMLElement => document.getElementById(id)!
  const el = (tag: string, text?: string, className?: string): HTMLElement => {
    const node = document.createElement(tag)
    if (text !== undefined) node.textContent = text
    if (className !== undefined) node.className = className
    return node
  }
  const row = (cells: Array<string | HTMLElement>): HTMLElement => {
    const tr = el('tr')
    for (const cell of cells) {
      const td = el('td')
      if (typeof cell === 'string') td.textContent = cell
      else td.appendChild(cell)
      tr.appendChild(td)
    }
    return tr
  }
  const fillTable = (id: string, rows: HTMLElement[], empty: string): void => {
    const body = byId(id)
    body.replaceChildren(...(rows.length > 0 ? rows : [row([empty])]))
  }
  const bytes = (n: number): string => n >= 1048576 ? (n / 1048576).toFixed(1) + ' MiB' : n >= 1024 ? (n / 1024).toFixed(1) + ' KiB' : n + ' B'
  const time = (ms: number): string => new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z')
  const getJson = async (path: string): Promise<any> => {
    const res = await fetch(path, { cache: 'no-store', credentials: 'same-origin' })
    if (!res.ok) throw new Error(path + ': HTTP ' + res.status)
    return await res.json()
  }

  const where = (w: any): string => w.kind === 'host' ? 'host ' + w.host : w.kind === 'partner' ? 'partner ' + w.partner : 'being placed'

  const renderVms = (overview: any): void => {
    const migrating = new Set(overview.migrations.map((m: any) => m.vmId))
    fillTable('vms', overview.vms.map((vm: any) => {
      const tr = row([vm.vmId, where(vm.where), vm.delegatedBy === null ? '' : 'partner ' + vm.delegatedBy, migrating.has(vm.vmId) ? 'migrating' : ''])
      tr.dataset.vm = vm.vmId
      return tr
    }), 'no VMs')
  }

  const renderMigrations = (overview: any): void => {
    fillTable('migrations', overview.migrations.map((m: any) => {
      const bar = el('progress') as HTMLProgressElement
      bar.dataset.vm = m.vmId
      bar.setAttribute('aria-label', 'migration of ' + m.vmId)
      let detail = m.phase
      if (typeof m.totalBytes === 'number' && m.totalBytes > 0 && typeof m.doneBytes === 'number') {
        bar.max = m.totalBytes
        bar.value = m.doneBytes
        detail = m.phase + (typeof m.iteration === 'number' ? ' (pass ' + m.iteration + ')' : '') + ': ' + bytes(m.doneBytes) + ' of ' + bytes(m.totalBytes) + ' (' + Math.floor(100 * m.doneBytes / m.totalBytes) + '%)'
        if (m.rateBytesPerSecond > 0) detail += ', ' + bytes(m.rateBytesPerSecond) + '/s'
        if (typeof m.etaMs === 'number') detail += ', ' + Math.ceil(m.etaMs / 1000) + ' s left'
      } else if (typeof m.doneBytes === 'number') {
        detail = m.phase + ': ' + bytes(m.doneBytes) + ' received' + (m.rateBytesPerSecond > 0 ? ', ' + bytes(m.rateBytesPerSecond) + '/s' : '')
      }
      detail += m.role === 'controller' ? ' · controlled here' : m.role === 'arrival' ? ' · arriving here, controlled by another site' : ' · controlled by another site'
      const tr = row([m.vmId, m.path ?? '', bar, detail])
      tr.dataset.vm = m.vmId
      return tr
    }), 'none running')
  }

  const renderFirings = (overview: any): void => {
    fillTable('firings', overview.firings.map((f: any) => row([time(f.at), f.rule, f.vm, f.when ?? '', f.action ?? ''])), 'no rule has fired')
  }

  const chartWidth = (): number => Math.max(320, Math.min(560, byId('charts').clientWidth - 16))

  const renderCharts = (vmId: string, series: any[], seen: Set<string>): void => {
    for (const s of series) {
      const key = vmId + '\u0000' + s.metric + '\u0000' + s.selector
      seen.add(key)
      const xs = s.points.map((p: number[]) => p[0])
      const ys = s.points.map((p: number[]) => p[1])
      let chart = charts.get(key)
      if (chart === undefined) {
        const box = el('figure', undefined, 'chart')
        box.dataset.key = key
        const caption = el('figcaption')
        caption.append(el('strong', vmId), ' ' + s.metric + ' ', el('span', s.selector, 'selector'))
        box.appendChild(caption)
        const note = el('p', '', 'note')
        box.appendChild(note)
        byId('charts').appendChild(box)
        chart = new uPlot({
          width: chartWidth(),
          height: 160,
          ms: 1, // timestamps stay in milliseconds, as the store keeps them
          legend: { show: false },
          scales: { x: { time: true } },
          series: [{}, { label: s.metric, stroke: '#2f6fb0', width: 1.5, points: { show: true, size: 4 } }],
        }, [xs, ys], box)
        charts.set(key, chart)
      } else {
        const [oldXs, oldYs] = chart.data
        const changed = oldXs.length !== xs.length || oldXs[oldXs.length - 1] !== xs[xs.length - 1] || oldYs[oldYs.length - 1] !== ys[ys.length - 1]
        if (changed) chart.setData([xs, ys])
      }
      const box = chart.root.parentElement as HTMLElement
      box.dataset.points = String(xs.length)
      const notes = []
      const count = (n: number, one: string, many: string): string => n + ' ' + (n === 1 ? one : many)
      if (s.opened > 0) notes.push(count(s.opened, 'point', 'points') + ' opened with this site\'s seal key')
      if (s.withheld > 0) notes.push(count(s.withheld, 'sealed delivery', 'sealed deliveries') + ' not shown')
      ;(box.querySelector('p.note') as HTMLElement).textContent = notes.join('; ')
    }
  }

  const dropStaleCharts = (seen: Set<string>): void => {
    for (const [key, chart] of charts) {
      if (seen.has(key)) continue
      const box = chart.root.parentElement as HTMLElement
      chart.destroy()
      box.remove()
      charts.delete(key)
    }
  }

  const poll = async (): Promise<void> => {
    try {
      const overview = await getJson('api/overview')
      byId('site').textContent = overview.site
      renderVms(overview)
      renderMigrations(overview)
      renderFirings(overview)
      const seen = new Set<string>()
      for (const vm of overview.vms) {
        const kpis = await getJson('api/kpis?vm=' + encodeURIComponent(vm.vmId))
        renderCharts(vm.vmId, kpis.series, seen)
      }
      dropStaleCharts(seen)
      byId('charts-empty').hidden = charts.size > 0
      state.polls++
      state.lastError = ''
      byId('status').textContent = 'updated ' + time(overview.at)
      byId('status').className = ''
    } catch (err) {
      state.lastError = String(err)
      byId('status').textContent = 'cannot read the site: ' + String(err)
      byId('status').className = 'error'
    }
    setTimeout(() => { void poll() }, POLL_MS)
  }
  void poll()
}

/** The script as the browser gets it. */
export const PAGE_SCRIPT = `(${runDashboard.toString()})()\n`
