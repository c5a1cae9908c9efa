// The dashboard's live stream of events: each row is built with
// textContent, so tracked values are shown as text, never as markup.
(function () {
  if (!window.EventSource) return;
  var es = new EventSource('/live');
  // give the connection back when leaving: browsers allow few per host
  addEventListener('pagehide', function () { es.close(); });
  es.addEventListener('ev', function (m) {
    var e = JSON.parse(m.data);
    var body = document.querySelector('#events tbody');
    if (!body) { location.reload(); return; }
    var tr = document.createElement('tr');
    [e.received, e.type, e.user || 'anonymous', e.url, e.referrer, e.channel].forEach(function (v, i) {
      var td = document.createElement('td');
      td.textContent = v || '';
      if (i === 3 || i === 4) td.className = 'url';
      tr.appendChild(td);
    });
    body.insertBefore(tr, body.firstChild);
    while (body.children.length > 50) body.removeChild(body.lastChild);
    var live = document.getElementById('live');
    if (live) live.className = 'live on';
  });
})();
