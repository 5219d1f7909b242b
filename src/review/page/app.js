// The review page. Plain JavaScript, no libraries, no network beyond this server: every path is
// relative to /<token>/, so the token never has to appear in this file.
'use strict';

const STRINGS = {
  es: {
    title: 'Revisión de códigos', filterFile: 'Archivo', filterSpeaker: 'Hablante',
    all: 'Todos', undo: 'Deshacer', export: 'Exportar', recordings: 'Grabaciones',
    projectMemo: 'Memo del proyecto', save: 'Guardar', accept: 'Aceptar', reject: 'Rechazar',
    reopen: 'Reabrir', rename: 'Renombrar', merge: 'Fusionar', mergeInto: 'Fusionar en…',
    split: 'Dividir', splitLabel: 'Nombre del código nuevo', splitGo: 'Dividir seleccionados',
    memo: 'Memo', moveTo: 'Mover a…', cancel: 'Cancelar', play: 'Reproducir desde aquí',
    quote: 'cita', definition: 'Definición', keywords: 'Palabras clave',
    proposed: 'propuesto', accepted: 'aceptado', rejected: 'rechazado', merged: 'fusionado',
    mergedInto: 'fusionado en', noPassages: 'Sin pasajes con estos filtros.',
    noCodes: 'No hay códigos: ¿se ejecutó el análisis de temas?', loading: 'Cargando…',
    saved: 'Guardado.', undone: 'Deshecho.', exported: 'Exportado a', files: 'archivos',
    close: 'Cerrar', speakers: 'Hablantes', transcript: 'Transcripción', edited: 'editado',
    noTheme: 'Sin tema', failed: 'Error', passages: 'pasajes', openTranscript: 'Abrir transcripción',
    suggest: 'Sugerir más pasajes', suggestions: 'Pasajes sugeridos', noSuggestions: 'Ningún otro pasaje se parece más a este código.',
    addToCode: 'Es un ejemplo de este código', nowIn: 'ahora en', uncoded: 'sin código', confidence: 'confianza',
    newCode: 'Código nuevo desde este pasaje', newCodeLabel: 'Nombre del código nuevo', create: 'Crear',
    typeWhatWasSaid: 'Escuche y escriba lo que se dijo',
  },
  en: {
    title: 'Code review', filterFile: 'File', filterSpeaker: 'Speaker',
    all: 'All', undo: 'Undo', export: 'Export', recordings: 'Recordings',
    projectMemo: 'Project memo', save: 'Save', accept: 'Accept', reject: 'Reject',
    reopen: 'Reopen', rename: 'Rename', merge: 'Merge', mergeInto: 'Merge into…',
    split: 'Split', splitLabel: 'Name of the new code', splitGo: 'Split selected',
    memo: 'Memo', moveTo: 'Move to…', cancel: 'Cancel', play: 'Play from here',
    quote: 'quote', definition: 'Definition', keywords: 'Keywords',
    proposed: 'proposed', accepted: 'accepted', rejected: 'rejected', merged: 'merged',
    mergedInto: 'merged into', noPassages: 'No passages match these filters.',
    noCodes: 'No codes: was the theme analysis run?', loading: 'Loading…',
    saved: 'Saved.', undone: 'Undone.', exported: 'Exported to', files: 'files',
    close: 'Close', speakers: 'Speakers', transcript: 'Transcript', edited: 'edited',
    noTheme: 'No theme', failed: 'Error', passages: 'passages', openTranscript: 'Open transcript',
    suggest: 'Suggest more passages', suggestions: 'Suggested passages', noSuggestions: 'No other passage fits this code better than its own.',
    addToCode: 'Is an example of this code', nowIn: 'now in', uncoded: 'in no code', confidence: 'confidence',
    newCode: 'New code from this passage', newCodeLabel: 'Name of the new code', create: 'Create',
    typeWhatWasSaid: 'Listen and type what was said',
  },
};
const LANG = document.documentElement.lang === 'en' ? 'en' : 'es';
const t = (key) => STRINGS[LANG][key] || key;

const state = {
  overview: null,
  filterUri: '',
  filterSpeaker: '',
  transcriptUri: null,
  // Code ids whose inline editors are open (kept across re-renders of the same code).
  renaming: new Set(),
  splitting: new Set(),
  memoOpen: new Set(),
  // Passage ids whose "new code" editors are open.
  newCodeOpen: new Set(),
  // Code id → its latest suggestions ({ suggestions, examples } or { error }), for open panels.
  suggesting: new Map(),
};

// ---- helpers -------------------------------------------------------------------------------

/** Creates an element: attributes (on* become listeners), then children (strings are text). */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'testid') node.dataset.testid = v;
    else if (k === 'className') node.className = v;
    else if (k === 'value') node.value = v;
    else if (k === 'checked') node.checked = !!v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function clock(ms) {
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const mm = String(m).padStart(h ? 2 : 1, '0'), ss = String(sec).padStart(2, '0');
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

function say(message, isError) {
  const status = document.getElementById('status');
  status.textContent = message || '';
  status.classList.toggle('error', !!isError);
}

/** Calls the API; throws with the server's message on an error status. */
async function api(method, path, body) {
  const opts = { method, headers: {} };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(path, opts);
  let data = null;
  try { data = await res.json(); } catch (_) { data = null; }
  if (!res.ok) throw new Error((data && data.error) || `${res.status} ${res.statusText}`);
  return data;
}

/** Runs a review action; re-renders from the overview the server returns. */
async function act(action) {
  try {
    state.overview = await api('POST', 'api/action', action);
    render();
    await refreshSuggestions();
    if (state.transcriptUri && (action.action === 'edit_segment' || action.action === 'rename_speaker')) {
      await openTranscript(state.transcriptUri);
    }
    say(t('saved'));
    return true;
  } catch (e) {
    say(`${t('failed')}: ${e.message}`, true);
    return false;
  }
}

function allCodes() {
  return state.overview ? state.overview.themes.flatMap((th) => th.codes) : [];
}

function codeLabel(id) {
  const c = allCodes().find((x) => x.id === id);
  return c ? c.label : `#${id}`;
}

// ---- audio ---------------------------------------------------------------------------------

let stopAtSeconds = null;

/** Plays `uri` from `startMs` (and pauses at `endMs`) on the one shared <audio> element. */
function play(uri, startMs, endMs) {
  const player = document.getElementById('player');
  const src = `audio/${encodeURIComponent(uri)}`;
  const start = () => {
    player.currentTime = startMs / 1000;
    stopAtSeconds = endMs ? endMs / 1000 : null;
    player.play().catch((e) => say(`${t('failed')}: ${e.message}`, true));
  };
  if (player.getAttribute('src') !== src) {
    player.setAttribute('src', src);
    player.dataset.uri = uri;
    player.addEventListener('loadedmetadata', start, { once: true });
    player.load();
  } else if (player.readyState >= 1) {
    start();
  } else {
    player.addEventListener('loadedmetadata', start, { once: true });
  }
}

function setupPlayer() {
  const player = document.getElementById('player');
  player.addEventListener('timeupdate', () => {
    if (stopAtSeconds !== null && player.currentTime >= stopAtSeconds) {
      stopAtSeconds = null;
      player.pause();
    }
  });
  player.addEventListener('error', () => say(`${t('failed')}: audio`, true));
}

// ---- filters and file list -----------------------------------------------------------------

function speakersInOverview(ov) {
  const names = new Set();
  for (const rec of ov.recordings) for (const s of rec.speakers) names.add(s.name);
  for (const c of ov.themes.flatMap((th) => th.codes)) {
    for (const p of c.passages) if (p.speaker) names.add(p.speaker);
  }
  return [...names].sort((a, b) => a.localeCompare(b));
}

function fillSelect(select, values, current) {
  select.replaceChildren(
    el('option', { value: '' }, t('all')),
    ...values.map((v) => el('option', { value: v }, v)),
  );
  select.value = values.includes(current) ? current : '';
  return select.value;
}

function renderFilters(ov) {
  state.filterUri = fillSelect(document.getElementById('filter-file'),
    ov.recordings.map((r) => r.uri), state.filterUri);
  state.filterSpeaker = fillSelect(document.getElementById('filter-speaker'),
    speakersInOverview(ov), state.filterSpeaker);
}

function renderFiles(ov) {
  const list = document.getElementById('file-list');
  list.replaceChildren(...ov.recordings.map((r) => el('li', {},
    el('button', {
      type: 'button', testid: `file-${r.uri}`, title: t('openTranscript'),
      onclick: () => openTranscript(r.uri),
    }, `${r.uri} (${clock(r.duration_ms)})`))));
}

function passageVisible(p) {
  return (!state.filterUri || p.uri === state.filterUri)
    && (!state.filterSpeaker || p.speaker === state.filterSpeaker);
}

// ---- codes ---------------------------------------------------------------------------------

function renderPassage(code, p, movable) {
  const splitting = state.splitting.has(code.id);
  const moveSelect = el('select', {
    testid: `move-${p.id}`, 'aria-label': t('moveTo'),
    onchange: (ev) => {
      const to = Number(ev.target.value);
      if (to) act({ action: 'move', passage: p.id, from: code.id, to });
    },
  }, el('option', { value: '' }, t('moveTo')),
  movable.filter((c) => c.id !== code.id).map((c) => el('option', { value: c.id }, c.label)));
  moveSelect.addEventListener('focus', () => rankMoveTargets(moveSelect, p.id, code.id), { once: true });
  return el('li', { className: `passage${p.quote ? ' quote' : ''}`, testid: `passage-${p.id}` },
    el('button', {
      type: 'button', className: 'play', testid: `play-${p.id}`, title: t('play'),
      'aria-label': t('play'), onclick: () => play(p.uri, p.start_ms, p.end_ms),
    }, '▶'),
    el('div', { className: 'meta' },
      splitting ? el('input', { type: 'checkbox', testid: `split-check-${p.id}`, 'data-passage': p.id }) : null,
      ' ', el('strong', {}, p.speaker || '—'), ' · ', p.uri, ' · ',
      `${clock(p.start_ms)}–${clock(p.end_ms)}`,
      p.quote ? el('span', { className: 'quote-mark', testid: `quote-${p.id}` }, ` ★ ${t('quote')}`) : null),
    el('div', { className: 'text' }, p.text),
    el('div', { className: 'tools' }, moveSelect,
      el('button', { type: 'button', testid: `new-code-${p.id}`, onclick: () => toggle(state.newCodeOpen, p.id) }, t('newCode')),
      p.memo ? el('span', { className: 'meta' }, `${t('memo')}: ${p.memo}`) : null),
    state.newCodeOpen.has(p.id) ? newCodeEditor(p.id, code.id) : null);
}

/** Orders a passage's "Move to…" list by how likely each code is for it, with the percentage
 *  (nothing changes when the project has no passage vectors). */
async function rankMoveTargets(select, passageId, currentCode) {
  let chances;
  try {
    chances = await api('GET', `api/passage-codes?passage=${passageId}`);
  } catch (_) {
    return;
  }
  const chance = new Map(chances.map((c) => [c.code, c.confidence]));
  const options = [...select.options].slice(1);
  options.sort((x, y) => (chance.get(Number(y.value)) || 0) - (chance.get(Number(x.value)) || 0));
  for (const o of options) {
    const c = chance.get(Number(o.value));
    if (c !== undefined && Number(o.value) !== currentCode) o.textContent = `${codeLabel(Number(o.value))} (${Math.round(c * 100)} %)`;
    select.append(o);
  }
}

/** "New code from this passage": a name, then the passage leaves `from` for the new code. */
function newCodeEditor(passage, from) {
  const input = el('input', { type: 'text', testid: `new-code-label-${passage}`, placeholder: t('newCodeLabel') });
  const go = async () => {
    if (await act({ action: 'new_code', label: input.value, passage, from })) {
      state.newCodeOpen.delete(passage);
      render();
    }
  };
  input.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') go(); });
  return el('div', { className: 'inline' }, input,
    el('button', { type: 'button', testid: `new-code-go-${passage}`, onclick: go }, t('create')),
    el('button', { type: 'button', onclick: () => { state.newCodeOpen.delete(passage); render(); } }, t('cancel')));
}

// ---- suggestions (code by example) ---------------------------------------------------------

async function loadSuggestions(codeId) {
  try {
    state.suggesting.set(codeId, await api('GET', `api/suggestions?code=${codeId}`));
  } catch (e) {
    state.suggesting.set(codeId, { error: e.message });
  }
}

/** After any change the open panels are asked again: the codes' members moved. */
async function refreshSuggestions() {
  const live = new Set(allCodes().filter((c) => c.status !== 'merged' && c.status !== 'rejected').map((c) => c.id));
  for (const id of [...state.suggesting.keys()]) if (!live.has(id)) state.suggesting.delete(id);
  if (!state.suggesting.size) return;
  await Promise.all([...state.suggesting.keys()].map(loadSuggestions));
  render();
}

async function toggleSuggestions(codeId) {
  if (state.suggesting.has(codeId)) {
    state.suggesting.delete(codeId);
    render();
    return;
  }
  await loadSuggestions(codeId);
  render();
}

function renderSuggestions(code) {
  const s = state.suggesting.get(code.id);
  if (!s) return null;
  if (s.error) return el('div', { className: 'suggestions', testid: `suggestions-${code.id}` }, el('p', { className: 'empty error' }, s.error));
  const items = s.suggestions.map((g) => el('li', { className: `passage suggestion${g.confident ? ' confident' : ''}`, testid: `suggestion-${code.id}-${g.passage}` },
    el('button', {
      type: 'button', className: 'play', title: t('play'), 'aria-label': t('play'),
      onclick: () => play(g.uri, g.start_ms, g.end_ms),
    }, '▶'),
    el('div', { className: 'meta' },
      el('strong', {}, g.speaker || '—'), ' · ', g.uri, ' · ', `${clock(g.start_ms)}–${clock(g.end_ms)}`, ' · ',
      el('span', { testid: `confidence-${code.id}-${g.passage}` }, `${t('confidence')} ${Math.round(g.confidence * 100)} %`), ' · ',
      g.code_now ? `${t('nowIn')} ${codeLabel(g.code_now)}` : t('uncoded')),
    el('div', { className: 'text' }, g.text),
    el('div', { className: 'tools' },
      el('button', {
        type: 'button', testid: `suggestion-accept-${code.id}-${g.passage}`,
        onclick: () => act({ action: 'move', passage: g.passage, from: g.code_now, to: code.id }),
      }, t('addToCode')))));
  return el('div', { className: 'suggestions', testid: `suggestions-${code.id}` },
    el('h4', {}, t('suggestions')),
    items.length ? el('ul', { className: 'passages' }, items) : el('p', { className: 'empty' }, t('noSuggestions')));
}

function renderMergedCode(code) {
  return el('article', { className: 'code status-merged', testid: `code-${code.id}` },
    el('div', { className: 'code-head' },
      el('h3', { testid: `label-${code.id}` }, code.label),
      el('span', { className: 'badge status-merged', testid: `status-${code.id}` }, t('merged')),
      el('span', { className: 'meta' }, `${t('mergedInto')} ${codeLabel(code.merged_into)}`)));
}

function renameEditor(code) {
  const input = el('input', { type: 'text', value: code.label, testid: `rename-input-${code.id}` });
  const save = async () => {
    if (await act({ action: 'rename', code: code.id, label: input.value })) {
      state.renaming.delete(code.id);
      render();
    }
  };
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') save();
    if (ev.key === 'Escape') { state.renaming.delete(code.id); render(); }
  });
  return el('div', { className: 'inline' }, input,
    el('button', { type: 'button', testid: `rename-save-${code.id}`, onclick: save }, t('save')),
    el('button', { type: 'button', onclick: () => { state.renaming.delete(code.id); render(); } }, t('cancel')));
}

function splitEditor(code) {
  const label = el('input', { type: 'text', testid: `split-label-${code.id}`, placeholder: t('splitLabel') });
  const go = async () => {
    const checked = [...document.querySelectorAll(`[data-testid="code-${code.id}"] input[type=checkbox][data-passage]`)]
      .filter((c) => c.checked).map((c) => Number(c.dataset.passage));
    if (await act({ action: 'split', code: code.id, passages: checked, label: label.value })) {
      state.splitting.delete(code.id);
      render();
    }
  };
  return el('div', { className: 'inline' }, label,
    el('button', { type: 'button', testid: `split-go-${code.id}`, onclick: go }, t('splitGo')),
    el('button', { type: 'button', onclick: () => { state.splitting.delete(code.id); render(); } }, t('cancel')));
}

function memoEditor(code) {
  const area = el('textarea', { rows: 3, testid: `memo-input-${code.id}` });
  area.value = code.memo || '';
  return el('div', {}, area,
    el('button', {
      type: 'button', testid: `memo-save-${code.id}`,
      onclick: async () => {
        if (await act({ action: 'memo', target: `code:${code.id}`, text: area.value })) {
          state.memoOpen.delete(code.id);
          render();
        }
      },
    }, t('save')));
}

function toggle(set, id) {
  if (set.has(id)) set.delete(id); else set.add(id);
  render();
}

function renderCode(code, movable) {
  if (code.status === 'merged') return renderMergedCode(code);
  const visible = code.passages.filter(passageVisible);
  const filtering = state.filterUri || state.filterSpeaker;
  if (filtering && visible.length === 0) return null;
  const mergeSelect = el('select', { testid: `merge-${code.id}`, 'aria-label': t('mergeInto') },
    el('option', { value: '' }, t('mergeInto')),
    movable.filter((c) => c.id !== code.id).map((c) => el('option', { value: c.id }, c.label)));
  const mergeGo = el('button', {
    type: 'button', testid: `merge-go-${code.id}`,
    onclick: () => {
      const into = Number(mergeSelect.value);
      if (into) act({ action: 'merge', into, from: [code.id] });
    },
  }, t('merge'));
  const status = code.status;
  return el('article', { className: `code status-${status}`, testid: `code-${code.id}` },
    el('div', { className: 'code-head' },
      el('h3', { testid: `label-${code.id}` }, code.label),
      el('span', { className: `badge status-${status}`, testid: `status-${code.id}` }, t(status)),
      el('span', { className: 'meta' }, `${code.passages.length} ${t('passages')}`)),
    code.definition ? el('p', { className: 'definition' }, code.definition) : null,
    code.keywords ? el('p', { className: 'keywords' }, `${t('keywords')}: ${code.keywords}`) : null,
    code.memo && !state.memoOpen.has(code.id) ? el('p', { className: 'meta', testid: `memo-${code.id}` }, `${t('memo')}: ${code.memo}`) : null,
    el('div', { className: 'actions' },
      el('button', { type: 'button', testid: `accept-${code.id}`, disabled: status === 'accepted',
        onclick: () => act({ action: 'accept', code: code.id }) }, t('accept')),
      el('button', { type: 'button', testid: `reject-${code.id}`, disabled: status === 'rejected',
        onclick: () => act({ action: 'reject', code: code.id }) }, t('reject')),
      status !== 'proposed' ? el('button', { type: 'button', testid: `reopen-${code.id}`,
        onclick: () => act({ action: 'reopen', code: code.id }) }, t('reopen')) : null,
      el('button', { type: 'button', testid: `rename-${code.id}`, onclick: () => toggle(state.renaming, code.id) }, t('rename')),
      mergeSelect, mergeGo,
      el('button', { type: 'button', testid: `split-${code.id}`, onclick: () => toggle(state.splitting, code.id) }, t('split')),
      el('button', { type: 'button', testid: `memo-${code.id}-open`, onclick: () => toggle(state.memoOpen, code.id) }, t('memo')),
      status !== 'rejected' ? el('button', { type: 'button', testid: `suggest-${code.id}`, 'aria-pressed': state.suggesting.has(code.id) ? 'true' : 'false',
        onclick: () => toggleSuggestions(code.id) }, t('suggest')) : null),
    status !== 'rejected' ? renderSuggestions(code) : null,
    state.renaming.has(code.id) ? renameEditor(code) : null,
    state.splitting.has(code.id) ? splitEditor(code) : null,
    state.memoOpen.has(code.id) ? memoEditor(code) : null,
    visible.length
      ? el('ul', { className: 'passages' }, visible.map((p) => renderPassage(code, p, movable)))
      : el('p', { className: 'empty' }, t('noPassages')));
}

function renderThemes(ov) {
  const root = document.getElementById('themes');
  const movable = ov.themes.flatMap((th) => th.codes).filter((c) => c.status !== 'merged');
  const sections = ov.themes.map((th) => {
    const codes = th.codes.map((c) => renderCode(c, movable)).filter(Boolean);
    if (!codes.length) return null;
    return el('section', { className: 'theme', testid: `theme-${th.key || 'none'}` },
      el('h2', {}, th.key || t('noTheme')), codes);
  }).filter(Boolean);
  root.replaceChildren(...(sections.length ? sections : [el('p', { className: 'empty' }, ov.themes.length ? t('noPassages') : t('noCodes'))]));
  root.setAttribute('aria-busy', 'false');
}

function render() {
  const ov = state.overview;
  if (!ov) return;
  renderFilters(ov);
  renderFiles(ov);
  renderThemes(ov);
  document.getElementById('undo').disabled = !ov.can_undo;
  const memo = document.getElementById('project-memo');
  if (document.activeElement !== memo) memo.value = ov.memo || '';
}

// ---- transcript panel ----------------------------------------------------------------------

async function openTranscript(uri) {
  try {
    const view = await api('GET', `api/transcript/${encodeURIComponent(uri)}`);
    state.transcriptUri = uri;
    renderTranscript(view);
  } catch (e) {
    say(`${t('failed')}: ${e.message}`, true);
  }
}

function closeTranscript() {
  state.transcriptUri = null;
  const panel = document.getElementById('transcript');
  panel.hidden = true;
  panel.replaceChildren();
  document.querySelector('.layout').classList.remove('with-transcript');
}

function speakerEditor(uri, s) {
  const input = el('input', { type: 'text', value: s.name, testid: `speaker-${s.label}` });
  const save = () => {
    if (input.value.trim() && input.value !== s.name) {
      act({ action: 'rename_speaker', uri, label: s.label, name: input.value });
    }
  };
  input.addEventListener('change', save);
  input.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') input.blur(); });
  return el('div', { className: 'inline' }, el('label', {}, s.label), input);
}

function segmentEditor(uri, seg) {
  const area = el('textarea', { rows: 2, testid: `segment-${seg.id}` });
  area.value = seg.text;
  // Speech the machine could not transcribe: listen, then type what was said.
  if (seg.inaudible) area.placeholder = t('typeWhatWasSaid');
  const save = () => {
    if (area.value.trim() !== seg.text) act({ action: 'edit_segment', segment: seg.id, text: area.value });
  };
  area.addEventListener('blur', save);
  area.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey) { ev.preventDefault(); area.blur(); }
  });
  const who = seg.inaudible || `${seg.speaker || '—'} · ${clock(seg.start_ms)}`;
  const classes = `segment${seg.edited ? ' edited' : ''}${seg.inaudible ? ' inaudible' : ''}`;
  return el('div', { className: classes, testid: `seg-${seg.id}` },
    el('button', { type: 'button', className: 'play', testid: `seg-play-${seg.id}`, title: t('play'),
      onclick: () => play(uri, seg.start_ms, seg.end_ms) }, '▶'),
    el('span', { className: 'who' }, `${who}${seg.edited ? ` · ${t('edited')}` : ''}`),
    area);
}

function renderTranscript(view) {
  const panel = document.getElementById('transcript');
  const rec = state.overview && state.overview.recordings.find((r) => r.uri === view.uri);
  panel.replaceChildren(
    el('div', { className: 'code-head' },
      el('h2', {}, `${t('transcript')}: ${view.uri}`),
      el('button', { type: 'button', testid: 'transcript-close', onclick: closeTranscript }, t('close'))),
    rec && rec.speakers.length
      ? el('div', { className: 'speakers' }, el('h3', {}, t('speakers')), rec.speakers.map((s) => speakerEditor(view.uri, s)))
      : null,
    ...view.segments.map((seg) => segmentEditor(view.uri, seg)));
  panel.hidden = false;
  document.querySelector('.layout').classList.add('with-transcript');
}

// ---- toolbar -------------------------------------------------------------------------------

async function undo() {
  try {
    state.overview = await api('POST', 'api/undo');
    render();
    await refreshSuggestions();
    if (state.transcriptUri) await openTranscript(state.transcriptUri);
    say(t('undone'));
  } catch (e) {
    say(`${t('failed')}: ${e.message}`, true);
  }
}

async function exportReviewed() {
  const button = document.getElementById('export');
  button.disabled = true;
  try {
    const res = await api('POST', 'api/export');
    say(`${t('exported')} ${res.dir} (${res.paths.length} ${t('files')})`);
    document.getElementById('status').dataset.exported = res.dir;
  } catch (e) {
    say(`${t('failed')}: ${e.message}`, true);
  } finally {
    button.disabled = false;
  }
}

function translateStatic() {
  for (const node of document.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
  document.title = `qualscribe — ${t('title')}`;
}

async function main() {
  translateStatic();
  setupPlayer();
  say(t('loading'));
  document.getElementById('undo').addEventListener('click', undo);
  document.getElementById('export').addEventListener('click', exportReviewed);
  document.getElementById('filter-file').addEventListener('change', (ev) => { state.filterUri = ev.target.value; render(); });
  document.getElementById('filter-speaker').addEventListener('change', (ev) => { state.filterSpeaker = ev.target.value; render(); });
  document.getElementById('project-memo-save').addEventListener('click', () => act({
    action: 'memo', target: 'project', text: document.getElementById('project-memo').value,
  }));
  try {
    state.overview = await api('GET', 'api/overview');
    render();
    say('');
    document.body.dataset.ready = 'true';
  } catch (e) {
    say(`${t('failed')}: ${e.message}`, true);
  }
}

main();
