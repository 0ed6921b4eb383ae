/**
 * The page's HTML and CSS. Static: every value arrives through the JSON API and is set as text by
 * the script (dashboard-script.ts), so nothing here is built from data.
 */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fedvm site</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="uplot.css">
<link rel="stylesheet" href="dashboard.css">
</head>
<body>
<header><h1>fedvm site <span id="site"></span></h1><p id="status">loading…</p></header>
<main>
<section><h2>VMs</h2>
<table><thead><tr><th>VM</th><th>where</th><th>delegated by</th><th>state</th></tr></thead><tbody id="vms"></tbody></table></section>
<section><h2>Migrations in progress</h2>
<table><thead><tr><th>VM</th><th>path</th><th>progress</th><th></th></tr></thead><tbody id="migrations"></tbody></table></section>
<section><h2>Rule firings</h2>
<table><thead><tr><th>data time</th><th>rule</th><th>VM</th><th>when</th><th>action</th></tr></thead><tbody id="firings"></tbody></table></section>
<section><h2>KPIs</h2><p id="charts-empty">no stored KPIs</p><div id="charts"></div></section>
</main>
<script src="uplot.js"></script>
<script src="dashboard.js"></script>
</body>
</html>
`

export const PAGE_CSS = `body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d2329; background: #f6f7f9; }
header { background: #24323f; color: #fff; padding: 8px 16px; display: flex; align-items: baseline; gap: 24px; }
header h1 { font-size: 18px; margin: 0; }
#status { margin: 0; font-size: 12px; opacity: .8; }
#status.error { color: #ffb4a8; opacity: 1; }
main { padding: 8px 16px; display: grid; grid-template-columns: minmax(360px, 1fr) minmax(360px, 1fr); gap: 8px 24px; }
section:last-child { grid-column: 1 / -1; }
h2 { font-size: 15px; margin: 12px 0 6px; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #e1e4e8; }
th { font-weight: 600; font-size: 12px; color: #57606a; }
progress { width: 160px; }
#charts { display: flex; flex-wrap: wrap; gap: 12px; }
figure.chart { margin: 0; padding: 6px; background: #fff; border: 1px solid #e1e4e8; }
figcaption { font-size: 13px; }
.selector { color: #57606a; }
.note { margin: 0; font-size: 12px; color: #57606a; min-height: 1em; }
`
