// Opens every page tests/html.rs wrote (PAGES/*.html, each with NAME.expect.json) in Debian's
// Chromium with networking disabled and checks what a reader gets: no console error, no request
// leaving the file, every flow id in the DOM, failing flows readable without a click, working
// ones collapsed, the status filter working without script, nothing executed from the report
// (window.__pwned, the sentinel the XSS payloads would set, stays undefined), and the print
// layout. Saves a screenshot of each page to OUT; with DOCS, also the README's two screenshots.
//
// usage: node check.mjs PAGES OUT [DOCS]
import { chromium } from 'playwright-core';
import { readdirSync, readFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [pagesDir, outDir, docsDir] = process.argv.slice(2);
if (!pagesDir || !outDir) {
  console.error('usage: node check.mjs PAGES OUT [DOCS]');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    // Nothing may resolve or connect: a page that tries to load anything fails loudly.
    '--host-resolver-rules=MAP * ~NOTFOUND', '--proxy-server=127.0.0.1:9',
  ],
});

const failures = [];
const fail = (page, what) => failures.push(`${page}: ${what}`);
const pages = readdirSync(pagesDir).filter((f) => f.endsWith('.html')).sort();
if (pages.length === 0) fail(pagesDir, 'no pages: run cargo test --test html first');

for (const file of pages) {
  const name = file.replace(/\.html$/, '');
  const expect = JSON.parse(readFileSync(join(pagesDir, `${name}.expect.json`), 'utf8'));
  const context = await browser.newContext({ offline: true, viewport: { width: 1100, height: 800 } });
  const page = await context.newPage();
  const url = pathToFileURL(resolve(pagesDir, file)).href;
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('request', (r) => { if (r.url() !== url) errors.push(`request to ${r.url()}`); });
  await page.goto(url, { waitUntil: 'load' });

  const seen = await page.evaluate((e) => {
    const section = (id) => document.getElementById(`flow-${id}`)
      || document.querySelector(`[data-flow="${CSS.escape(id)}"]`);
    const readable = (id) => {
      const why = section(id)?.querySelector('.why');
      return Boolean(why && why.checkVisibility());
    };
    return {
      pwned: typeof window.__pwned,
      active: document.querySelectorAll('script,img,iframe,object,embed,svg,link').length,
      missing: e.ids.filter((id) => !section(id)),
      shut: e.open.filter((id) => !readable(id)),
      shown: e.closed.filter((id) => readable(id)),
      csp: document.querySelector('meta[http-equiv="Content-Security-Policy"]')?.content ?? '',
    };
  }, expect);
  if (seen.pwned !== 'undefined') fail(name, `window.__pwned is ${seen.pwned}: the report ran script`);
  if (seen.active) fail(name, `${seen.active} script/img/iframe/object/embed/svg/link elements`);
  if (seen.missing.length) fail(name, `flow ids missing from the DOM: ${seen.missing.join(', ')}`);
  if (seen.shut.length) fail(name, `failing flows not readable without a click: ${seen.shut.join(', ')}`);
  if (seen.shown.length) fail(name, `working flows not collapsed: ${seen.shown.join(', ')}`);
  if (!seen.csp.startsWith("default-src 'none'")) fail(name, `CSP is '${seen.csp}'`);

  await page.screenshot({ path: join(outDir, `${name}.png`), fullPage: true });
  if (docsDir && (name === 'run' || name === 'heatmap')) {
    await page.screenshot({ path: join(docsDir, `html-${name}.png`) });
  }

  // The filter is radio buttons and CSS: a click on "BLOCKED" hides working flows.
  if (expect.open.length && expect.closed.length && await page.locator('#show-blocked').count()) {
    await page.click('label[for="show-blocked"]');
    const [works, blocked] = await page.evaluate(([w, b]) => [
      document.getElementById(`flow-${w}`).checkVisibility(),
      document.getElementById(`flow-${b}`).checkVisibility(),
    ], [expect.closed[0], expect.open[0]]);
    if (works) fail(name, 'the BLOCKED filter still shows a working flow');
    if (!blocked) fail(name, 'the BLOCKED filter hides a blocked flow');
    await page.click('label[for="show-all"]');
  }

  // Printed, the filter goes and the failing flows stay readable.
  await page.emulateMedia({ media: 'print' });
  const printed = await page.evaluate((open) => ({
    filter: document.getElementById('show-all')?.checkVisibility() ?? false,
    shut: open.filter((id) => !document.getElementById(`flow-${id}`)?.querySelector('.why')?.checkVisibility()),
  }), expect.open);
  if (printed.filter) fail(name, 'the filter is printed');
  if (printed.shut.length) fail(name, `failing flows not printed: ${printed.shut.join(', ')}`);

  for (const e of errors) fail(name, `console: ${e}`);
  console.log(`${name}: ${expect.ids.length} flows, ${expect.open.length} open, checked`);
  await context.close();
}

await browser.close();
if (failures.length) {
  for (const f of failures) console.error(`FAIL ${f}`);
  process.exit(1);
}
console.log(`html check: ${pages.length} pages passed in Chromium`);
