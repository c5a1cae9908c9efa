// The campaign editor: a form built from the campaign's JSON (groups,
// conditions, placement, trigger, limits, goal, variations), saved through
// /campaigns/api, with the chosen variation shown in a sandboxed iframe and,
// once "Open preview tab" was used, published as it is typed to every shop
// tab previewing it (live preview over WebSocket). Every value is set with
// .value / .textContent: nothing typed here becomes markup of this page.
(function () {
  var c = JSON.parse(document.getElementById('campaign-data').textContent);
  var meta = JSON.parse(document.getElementById('campaign-meta').textContent);
  var root = document.getElementById('editor');
  var id = root.dataset.id || '';
  var sel = { g: 0, v: 0 }; // what the previews show
  var token = '', sending = false, dirty = false;
  var modes = ['replace', 'before', 'after', 'prepend', 'append', 'popup', 'bar_top', 'bar_bottom'];
  var goals = ['shown', 'click', 'close', 'order'];
  var triggers = ['immediately', 'delay', 'scroll', 'exit_intent'];

  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) {
      if (k === 'text') e.textContent = attrs[k];
      else if (k === 'value') e.value = attrs[k];
      else if (k === 'checked') e.checked = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    (kids || []).forEach(function (k) { if (k) e.appendChild(k); });
    return e;
  }
  function label(text, input) { return el('label', { class: 'field' }, [el('span', { text: text }), input]); }
  function select(options, value, onchange, attrs) {
    var s = el('select', attrs);
    options.forEach(function (o) { s.appendChild(el('option', { value: o, text: o })); });
    s.value = value;
    s.addEventListener('change', function () { onchange(s.value); });
    return s;
  }
  function input(value, oninput, attrs) {
    var i = el('input', attrs);
    i.value = value == null ? '' : value;
    i.addEventListener('input', function () { oninput(i.value); });
    return i;
  }
  function num(v) { var n = Number(v); return isNaN(n) ? 0 : n; }
  function button(text, onclick, attrs) {
    var b = el('button', Object.assign({ type: 'button', class: 'inline' }, attrs || {}), []);
    b.textContent = text;
    b.addEventListener('click', onclick);
    return b;
  }

  function changed(rebuild) {
    if (rebuild) render();
    sandbox();
    publish();
  }

  function render() {
    root.textContent = '';
    root.appendChild(label('Name', input(c.name, function (v) { c.name = v; changed(); }, { id: 'c-name' })));
    root.appendChild(label('Status', select(['draft', 'active', 'paused', 'archived'], c.status || 'draft', function (v) { c.status = v; }, { id: 'c-status' })));
    c.groups.forEach(function (g, gi) { root.appendChild(group(g, gi)); });
    root.appendChild(button('Add a step', function () {
      c.groups.push({ name: 'Step ' + (c.groups.length + 1), placement: { mode: 'popup' }, goal: 'shown', trigger: { kind: 'immediately' },
        variations: [{ name: 'A', weight: 100, html: '<p>…</p>' }] });
      changed(true);
    }, { id: 'add-group' }));
  }

  function group(g, gi) {
    var box = el('fieldset', { class: 'group', id: 'group-' + gi }, [el('legend', { text: 'Step ' + (gi + 1) + (gi > 0 ? ' (after step ' + gi + ' reached its goal)' : '') })]);
    g.placement = g.placement || { mode: 'after' };
    g.trigger = g.trigger || { kind: 'immediately' };
    g.limits = g.limits || {};
    g.conditions = g.conditions || [];
    box.appendChild(label('Name', input(g.name, function (v) { g.name = v; })));
    box.appendChild(label('Placement', select(modes, g.placement.mode, function (v) { g.placement.mode = v; if (/popup|bar/.test(v)) delete g.placement.selector; changed(true); }, { id: 'g' + gi + '-mode' })));
    if (!/popup|bar/.test(g.placement.mode)) {
      box.appendChild(label('CSS selector', input(g.placement.selector, function (v) { g.placement.selector = v; changed(); }, { id: 'g' + gi + '-selector', placeholder: 'h1' })));
    }
    box.appendChild(label('Trigger', select(triggers, g.trigger.kind, function (v) { g.trigger = { kind: v }; if (v === 'delay') g.trigger.value = 3; if (v === 'scroll') g.trigger.value = 50; changed(true); })));
    if (g.trigger.kind === 'delay' || g.trigger.kind === 'scroll') {
      box.appendChild(label(g.trigger.kind === 'delay' ? 'Seconds' : 'Scroll %', input(g.trigger.value, function (v) { g.trigger.value = num(v); }, { type: 'number' })));
    }
    box.appendChild(label('Goal (for the next step)', select(goals, g.goal || 'shown', function (v) { g.goal = v; })));
    box.appendChild(label('At most per session (0: no cap)', input(g.limits.per_session || 0, function (v) { g.limits.per_session = num(v); }, { type: 'number', min: 0 })));
    box.appendChild(label('At most per shopper (0: no cap)', input(g.limits.per_user || 0, function (v) { g.limits.per_user = num(v); }, { type: 'number', min: 0 })));
    var conds = el('div', { class: 'conditions' }, [el('h3', { text: 'Conditions (all must hold)' })]);
    g.conditions.forEach(function (cd, ci) {
      var ops = meta.kinds[cd.kind] || [];
      conds.appendChild(el('div', { class: 'condition' }, [
        select(Object.keys(meta.kinds).sort(), cd.kind, function (v) { cd.kind = v; cd.op = meta.kinds[v][0]; changed(true); }),
        select(ops, cd.op, function (v) { cd.op = v; }),
        input(cd.value, function (v) { cd.value = v; }),
        button('Remove', function () { g.conditions.splice(ci, 1); changed(true); })
      ]));
    });
    conds.appendChild(button('Add a condition', function () { g.conditions.push({ kind: 'url', op: 'contains', value: '/' }); changed(true); }));
    box.appendChild(conds);
    var vars = el('div', { class: 'variations' }, [el('h3', { text: 'Variations (weights add up to 100)' })]);
    g.variations.forEach(function (v, vi) {
      var radio = el('input', { type: 'radio', name: 'shown', id: 'show-' + gi + '-' + vi, checked: sel.g === gi && sel.v === vi });
      radio.addEventListener('change', function () { sel = { g: gi, v: vi }; changed(); });
      var html = el('textarea', { id: 'g' + gi + '-v' + vi + '-html', rows: 4, cols: 70 });
      html.value = v.html || '';
      html.disabled = !!v.control;
      html.addEventListener('input', function () { v.html = html.value; sel = { g: gi, v: vi }; radio.checked = true; changed(); });
      var ctl = el('input', { type: 'checkbox', checked: !!v.control });
      ctl.addEventListener('change', function () { v.control = ctl.checked; if (ctl.checked) v.html = ''; changed(true); });
      vars.appendChild(el('div', { class: 'variation' }, [
        label('Show in previews', radio),
        label('Name', input(v.name, function (x) { v.name = x; })),
        label('Weight %', input(v.weight, function (x) { v.weight = num(x); }, { type: 'number', min: 0, max: 100 })),
        label('Control (shows nothing)', ctl),
        label('HTML ({{recommend "similar" 4}}, {{product "1001"}} insert products)', html),
        g.variations.length > 1 ? button('Remove', function () { g.variations.splice(vi, 1); sel = { g: gi, v: 0 }; changed(true); }) : null
      ]));
    });
    vars.appendChild(button('Add a variation', function () {
      g.variations.push({ name: String.fromCharCode(65 + g.variations.length), weight: 0, html: '<p>…</p>' }); changed(true);
    }));
    box.appendChild(vars);
    if (c.groups.length > 1) box.appendChild(button('Remove this step', function () { c.groups.splice(gi, 1); sel = { g: 0, v: 0 }; changed(true); }));
    return box;
  }

  function current() {
    var g = c.groups[sel.g] || c.groups[0];
    return (g && (g.variations[sel.v] || g.variations[0])) || {};
  }

  // the sandboxed preview: no scripts, no same origin
  function sandbox() {
    document.getElementById('sandbox').srcdoc = current().html || '<p>(the control shows nothing)</p>';
  }

  function status(msg, err) {
    var e = document.getElementById('editor-error'), s = document.getElementById('editor-status');
    e.hidden = !err; s.hidden = !!err || !msg;
    (err ? e : s).textContent = msg;
  }

  // publish sends the draft to the preview tabs: one request at a time,
  // the newest draft after it (edits made meanwhile are coalesced)
  function publish() {
    if (!token) return;
    if (sending) { dirty = true; return; }
    sending = true; dirty = false;
    fetch('/campaigns/preview/' + token, { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ campaign: c, group: sel.g, variation: sel.v, t: Date.now() }) })
      .then(function (r) { return r.status === 204 ? null : r.json(); })
      .then(function (j) { if (j && j.error) status('Preview: ' + j.error.field + ': ' + j.error.message, true); else status(''); })
      .catch(function () {})
      .then(function () { sending = false; if (dirty) publish(); });
  }

  document.getElementById('save').addEventListener('click', function () {
    fetch(id ? '/campaigns/api/' + id : '/campaigns/api', { method: id ? 'PUT' : 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(c) })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, j: j }; }); })
      .then(function (x) {
        if (!x.ok) { status(x.j.error.field + ': ' + x.j.error.message, true); return; }
        if (!id) { location.href = '/campaigns/' + x.j.id; return; }
        c = x.j; status('Saved.'); changed(true);
      });
  });

  var shop = document.getElementById('shop-url');
  shop.value = meta.shop || '';
  document.getElementById('preview-shop').addEventListener('click', function () {
    var tab = window.open('', '_blank');
    fetch('/campaigns/preview', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ campaign_id: id, url: shop.value }) })
      .then(function (r) { return r.json(); })
      .then(function (j) {
        if (j.error) { if (tab) tab.close(); status(j.error.field + ': ' + j.error.message, true); return; }
        token = j.token;
        document.getElementById('editor').dataset.token = token;
        if (tab) tab.location = j.url;
        publish();
      });
  });

  render();
  sandbox();
})();
