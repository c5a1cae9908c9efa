// The dashboard's live stream of events: each row is built with
// textContent, so tracked values are shown as text, never as markup.
(function () {
  if (!window.EventSource) return;
  function clip(s, n) {
    var a = Array.from(s);
    return a.length > n ? a.slice(0, n).join('') + '\u2026' : s;
  }
  var es = new EventSource('/live');
  // give the connection back when leaving: browsers allow few per host
  addEventListener('pagehide', function () { es.close(); });
  // the stream is open: events stored from now on arrive
  es.addEventListener('open', function () {
    var live = document.getElementById('live');
    if (live) live.dataset.connected = 'true';
  });
  es.addEventListener('ev', function (m) {
    var e = JSON.parse(m.data);
    var body = document.querySelector('#events tbody');
    if (!body) { location.reload(); return; }
    var tr = document.createElement('tr');
    [e.received, e.type, e.user || 'anonymous', e.url, e.referrer, e.channel].forEach(function (v, i) {
      var td = document.createElement('td');
      v = v || '';
      if (i === 3 || i === 4) {
        // as the page's cells: at most 200 characters, three lines, the
        // rest in the tooltip (a URL may be kilobytes long)
        td.className = 'url';
        var div = document.createElement('div');
        div.className = 'clip';
        div.title = clip(v, 2000);
        div.textContent = clip(v, 200);
        td.appendChild(div);
      } else {
        td.textContent = v;
      }
      tr.appendChild(td);
    });
    body.insertBefore(tr, body.firstChild);
    while (body.children.length > 50) body.removeChild(body.lastChild);
    var live = document.getElementById('live');
    if (live) live.className = 'live on';
  });
})();
