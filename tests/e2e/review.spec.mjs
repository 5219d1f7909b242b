// End-to-end test of the review page in headless Chromium (playwright-core, no test runner).
// Usage: node tests/e2e/review.spec.mjs <page url> <run output folder> <screenshot.png>
// Run through scripts/e2e.sh, which installs playwright-core and chromium and starts the server.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

const [url, runDir, shot] = process.argv.slice(2);
if (!url || !runDir || !shot) {
  console.error('usage: review.spec.mjs <url> <run folder> <screenshot.png>');
  process.exit(2);
}
// ESM ignores NODE_PATH: resolve playwright-core from the cache folder scripts/e2e.sh fills.
const nodeDir = process.env.E2E_NODE_DIR || path.join(process.env.HOME || '.', '.cache/qualscribe/e2e');
const require = createRequire(path.join(nodeDir, 'e2e.cjs'));
const { chromium } = require('playwright-core');

const NEW_NAME = 'Código renombrado E2E';
let step = 'start';
const check = (ok, message) => {
  if (!ok) throw new Error(message);
};
const tid = (id) => `[data-testid="${id}"]`;

async function readOverview(page) {
  return page.evaluate(async () => (await fetch('api/overview')).json());
}

async function waitReady(page) {
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update'],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  const audioStatuses = [];
  page.on('response', (r) => {
    if (r.url().includes('/audio/')) audioStatuses.push(r.status());
  });
  // Nothing may leave the machine: every request goes to the review server.
  const origin = new URL(url).origin;
  const foreign = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(origin) && !r.url().startsWith('data:')) foreign.push(r.url());
  });

  try {
    step = 'open the page';
    await page.goto(url);
    await waitReady(page);
    check(await page.locator('html').getAttribute('lang') === 'es', 'page language is not es');
    check((await page.locator(tid('undo')).textContent()).trim() === 'Deshacer', 'Spanish interface text missing');

    let ov = await readOverview(page);
    const codes = ov.themes.flatMap((t) => t.codes).filter((c) => c.status !== 'merged');
    check(codes.length >= 2, `need at least 2 codes to merge, the run proposed ${codes.length}`);
    const [a, b] = codes;
    await page.locator(tid(`code-${a.id}`)).waitFor();

    step = 'play a quote';
    const passage = codes.flatMap((c) => c.passages).find((p) => p.quote)
      || codes.flatMap((c) => c.passages)[0];
    check(passage, 'no passage to play');
    await page.locator(tid(`play-${passage.id}`)).first().click();
    await page.waitForFunction(() => {
      const audio = document.getElementById('player');
      return audio && !audio.paused && audio.readyState >= 2;
    }, null, { timeout: 15000 });
    const t0 = await page.evaluate(() => document.getElementById('player').currentTime);
    await page.waitForTimeout(800);
    const t1 = await page.evaluate(() => document.getElementById('player').currentTime);
    check(t0 >= passage.start_ms / 1000 - 0.5, `playback started at ${t0}s, passage starts at ${passage.start_ms / 1000}s`);
    check(t1 > t0, `audio did not advance (${t0}s → ${t1}s)`);
    check(audioStatuses.some((s) => s === 200 || s === 206), `audio requests answered ${JSON.stringify(audioStatuses)}`);
    await page.evaluate(() => document.getElementById('player').pause());

    step = 'suggest more passages, accept one';
    // A passage that leans to its own code is split out and merged into the other code (both
    // keep it a machine placement): its first code must now suggest it back.
    const chancesOf = (pid) => page.evaluate(async (id) => (await fetch(`api/passage-codes?passage=${id}`)).json(), pid);
    let home = null, away = null, moved = null;
    for (const [h, w] of [[a, b], [b, a]]) {
      if (h.passages.length < 2) continue;
      for (const p of h.passages) {
        const chances = await chancesOf(p.id);
        if (chances.length && chances[0].code === h.id) { home = h; away = w; moved = p; break; }
      }
      if (moved) break;
    }
    check(moved, 'no machine-coded passage leans to its own code');
    await page.locator(tid(`split-${home.id}`)).click();
    await page.locator(tid(`split-check-${moved.id}`)).check();
    await page.locator(tid(`split-label-${home.id}`)).fill('Sugerencia E2E');
    await page.locator(tid(`split-go-${home.id}`)).click();
    const tmpCode = await page.waitForFunction(async () => {
      const ov = await (await fetch('api/overview')).json();
      const made = ov.themes.flatMap((th) => th.codes).find((x) => x.label === 'Sugerencia E2E');
      return made ? made.id : null;
    }, null, { timeout: 10000 }).then((h) => h.jsonValue());
    await page.locator(tid(`merge-${tmpCode}`)).selectOption(String(away.id));
    await page.locator(tid(`merge-go-${tmpCode}`)).click();
    await page.waitForFunction((sel) => {
      const n = document.querySelector(sel);
      return n && n.textContent === 'fusionado';
    }, tid(`status-${tmpCode}`), { timeout: 10000 });
    await page.locator(tid(`suggest-${home.id}`)).click();
    await page.locator(tid(`suggestion-${home.id}-${moved.id}`)).waitFor({ timeout: 10000 });
    const conf = await page.locator(tid(`confidence-${home.id}-${moved.id}`)).textContent();
    check(/confianza \d+ %/.test(conf), `confidence shown as ${conf}`);
    await page.locator(tid(`suggestion-accept-${home.id}-${moved.id}`)).click();
    await page.waitForFunction(async ([pid, to]) => {
      const ov = await (await fetch('api/overview')).json();
      return ov.themes.flatMap((th) => th.codes).find((x) => x.id === to).passages.some((p) => p.id === pid);
    }, [moved.id, home.id], { timeout: 10000 });
    // The open panel was asked again: the accepted passage is no longer offered.
    await page.waitForFunction((sel) => !document.querySelector(sel), tid(`suggestion-${home.id}-${moved.id}`), { timeout: 10000 });
    await page.locator(tid(`suggest-${home.id}`)).click();

    step = 'move list ranked by likelihood';
    await page.locator(`${tid(`code-${home.id}`)} ${tid(`move-${moved.id}`)}`).focus();
    await page.waitForFunction((sel) => {
      const s = document.querySelector(sel);
      return s && [...s.options].some((o) => / \(\d+ %\)$/.test(o.textContent));
    }, `${tid(`code-${home.id}`)} ${tid(`move-${moved.id}`)}`, { timeout: 10000 });

    step = 'rename a code';
    await page.locator(tid(`rename-${a.id}`)).click();
    await page.locator(tid(`rename-input-${a.id}`)).fill(NEW_NAME);
    await page.locator(tid(`rename-save-${a.id}`)).click();
    await page.waitForFunction(([sel, name]) => {
      const n = document.querySelector(sel);
      return n && n.textContent === name;
    }, [tid(`label-${a.id}`), NEW_NAME], { timeout: 10000 });

    step = 'merge two codes';
    await page.locator(tid(`merge-${b.id}`)).selectOption(String(a.id));
    await page.locator(tid(`merge-go-${b.id}`)).click();
    await page.waitForFunction((sel) => {
      const n = document.querySelector(sel);
      return n && n.textContent === 'fusionado';
    }, tid(`status-${b.id}`), { timeout: 10000 });
    check(await page.locator(tid('undo')).isEnabled(), 'Undo is not enabled after actions');

    step = 'memo on a code';
    await page.locator(tid(`memo-${a.id}-open`)).click();
    await page.locator(tid(`memo-input-${a.id}`)).fill('Memo E2E');
    await page.locator(tid(`memo-save-${a.id}`)).click();
    await page.waitForFunction((sel) => {
      const n = document.querySelector(sel);
      return n && n.textContent.includes('Memo E2E');
    }, tid(`memo-${a.id}`), { timeout: 10000 });

    const c = codes.slice(2).find((x) => x.passages.length >= 2);
    if (c) {
      step = 'split a code';
      const [p0, p1] = c.passages;
      await page.locator(tid(`split-${c.id}`)).click();
      await page.locator(tid(`split-check-${p0.id}`)).check();
      await page.locator(tid(`split-label-${c.id}`)).fill('Dividido E2E');
      await page.locator(tid(`split-go-${c.id}`)).click();
      await page.waitForFunction(async (pid) => {
        const ov = await (await fetch('api/overview')).json();
        const all = ov.themes.flatMap((th) => th.codes);
        const made = all.find((x) => x.label === 'Dividido E2E');
        return made && made.passages.length === 1 && made.passages[0].id === pid;
      }, p0.id, { timeout: 10000 });

      step = 'move a passage';
      await page.locator(`${tid(`code-${c.id}`)} ${tid(`move-${p1.id}`)}`).selectOption(String(a.id));
      await page.waitForFunction(async ([pid, from, to]) => {
        const ov = await (await fetch('api/overview')).json();
        const all = ov.themes.flatMap((th) => th.codes);
        const has = (id) => all.find((x) => x.id === id).passages.some((p) => p.id === pid);
        return has(to) && !has(from);
      }, [p1.id, c.id, a.id], { timeout: 10000 });
    }

    step = 'new code from a passage';
    ov = await readOverview(page);
    const donor = ov.themes.flatMap((th) => th.codes).find((x) => x.id === a.id).passages[0];
    await page.locator(`${tid(`code-${a.id}`)} ${tid(`new-code-${donor.id}`)}`).click();
    await page.locator(tid(`new-code-label-${donor.id}`)).fill('Nuevo E2E');
    await page.locator(tid(`new-code-go-${donor.id}`)).click();
    await page.waitForFunction(async (pid) => {
      const ov = await (await fetch('api/overview')).json();
      const made = ov.themes.flatMap((th) => th.codes).find((x) => x.label === 'Nuevo E2E');
      return made && made.status === 'accepted' && made.passages.length === 1 && made.passages[0].id === pid;
    }, donor.id, { timeout: 10000 });

    step = 'transcript panel: name a speaker';
    const uri = passage.uri;
    const transcript = () => page.evaluate(async (u) => (await fetch(`api/transcript/${encodeURIComponent(u)}`)).json(), uri);
    await page.locator(tid(`file-${uri}`)).click();
    const before = await transcript();
    // A speaker who has coded passages, so the speaker filter below has something to show.
    const seg = before.segments.find((s) => s.speaker_label && s.speaker_label === passage.speaker_label)
      || before.segments[0];
    await page.locator(tid(`segment-${seg.id}`)).waitFor();
    if (seg.speaker_label) {
      await page.locator(tid(`speaker-${seg.speaker_label}`)).fill('Ana E2E');
      await page.locator(tid(`speaker-${seg.speaker_label}`)).press('Enter');
      await page.waitForFunction(async ([u, label]) => {
        const ov = await (await fetch('api/overview')).json();
        const rec = ov.recordings.find((r) => r.uri === u);
        return rec && rec.speakers.some((s) => s.label === label && s.name === 'Ana E2E');
      }, [uri, seg.speaker_label], { timeout: 10000 });

      step = 'filter by speaker';
      await page.locator(tid('filter-speaker')).selectOption('Ana E2E');
      const metas = await page.locator('[data-testid^="passage-"] .meta strong').allTextContents();
      check(metas.length > 0 && metas.every((m) => m === 'Ana E2E'), `speaker filter shows ${JSON.stringify(metas)}`);
      await page.locator(tid('filter-speaker')).selectOption('');
    }

    step = 'transcript panel: correct a segment, then undo it';
    const fixed = `${seg.text} (corregido)`;
    await page.locator(tid(`segment-${seg.id}`)).fill(fixed);
    await page.locator(tid(`segment-${seg.id}`)).press('Enter');
    await page.waitForFunction(async ([u, id, text]) => {
      const tv = await (await fetch(`api/transcript/${encodeURIComponent(u)}`)).json();
      return tv.segments.some((s) => s.id === id && s.text === text && s.edited);
    }, [uri, seg.id, fixed], { timeout: 10000 });
    await page.locator(tid('undo')).click();
    await page.waitForFunction(async ([u, id, text]) => {
      const tv = await (await fetch(`api/transcript/${encodeURIComponent(u)}`)).json();
      return tv.segments.some((s) => s.id === id && s.text === text && !s.edited);
    }, [uri, seg.id, seg.text], { timeout: 10000 });
    await page.waitForFunction(([sel, text]) => {
      const n = document.querySelector(sel);
      return n && n.value === text;
    }, [tid(`segment-${seg.id}`), seg.text], { timeout: 10000 });

    step = 'reload: decisions persisted';
    await page.reload();
    await waitReady(page);
    check((await page.locator(tid(`label-${a.id}`)).textContent()) === NEW_NAME, 'rename lost on reload');
    check((await page.locator(tid(`status-${b.id}`)).textContent()) === 'fusionado', 'merge lost on reload');
    ov = await readOverview(page);
    const merged = ov.themes.flatMap((t) => t.codes).find((c) => c.id === b.id);
    check(merged.status === 'merged' && merged.merged_into === a.id, 'merge not stored');

    step = 'export';
    await page.locator(tid('export')).click();
    await page.waitForFunction(() => document.getElementById('status').dataset.exported, null, { timeout: 30000 });
    const md = fs.readFileSync(path.join(runDir, 'reviewed', 'codes.md'), 'utf8');
    check(md.includes(NEW_NAME), 'reviewed/codes.md lacks the new code name');
    check(!md.split('\n').some((l) => l.startsWith(`## ${b.label} (`)), `reviewed/codes.md still lists the merged-away code ${b.label}`);

    step = 'screenshot';
    await page.screenshot({ path: shot, fullPage: true });
    check(pageErrors.length === 0, `page errors: ${pageErrors.join('; ')}`);
    check(foreign.length === 0, `requests left the review server: ${foreign.join(', ')}`);
    console.log(`e2e: played ${passage.uri} from ${t0.toFixed(2)}s, accepted suggested passage ${moved.id} into code ${home.id}, renamed code ${a.id}, merged ${b.id} into it, made a code from a passage, exported`);
  } catch (e) {
    await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
    throw new Error(`${step}: ${e.message}`);
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(`e2e: FAILED: ${e.message}`);
  process.exit(1);
});
