// The segment editor: a form builder over the rule's JSON (the textarea is
// the truth, and works without this script), and a live preview of what
// the rule selects, asked of the server as the rule changes.
(function () {
  "use strict";
  var rule = document.getElementById("rule");
  var list = document.getElementById("b-conditions");
  var name = document.getElementById("b-name");
  var match = document.getElementById("b-match");
  if (!rule || !list) return;
  document.getElementById("builder").hidden = false;
  var ops = ["eq", "ne", "in", "contains", "starts_with", "gt", "lt", "exists"];
  var counts = ["gte", "eq", "lte", "gt", "lt"];

  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    for (var k in attrs) if (attrs[k] !== undefined) e.setAttribute(k, attrs[k]);
    (kids || []).forEach(function (c) { e.append(c); });
    return e;
  }
  function select(cls, values, cur) {
    var s = el("select", { "class": cls });
    values.forEach(function (v) { var o = el("option", { value: v }, [v]); if (v === cur) o.selected = true; s.append(o); });
    return s;
  }
  function input(cls, value, ph, extra) {
    var i = el("input", Object.assign({ "class": cls, placeholder: ph }, extra || {}));
    i.value = value === undefined || value === null ? "" : (typeof value === "object" ? JSON.stringify(value) : String(value));
    return i;
  }
  // value reads a typed value: a number or true/false when it looks like one
  function value(s, op) {
    s = s.trim();
    if (op === "in") return s.split(",").map(function (x) { return value(x, ""); });
    if (s === "true" || s === "false") return s === "true";
    if (s !== "" && !isNaN(Number(s)) && op !== "contains" && op !== "starts_with") return Number(s);
    return s;
  }
  function kindOf(c) {
    var inner = c.not || c;
    if (inner.event !== undefined && !(inner.where && inner.where.length > 1)) return "event";
    if (inner.attribute !== undefined) return "attribute";
    if (inner.spent !== undefined) return "spent";
    if (inner.orders !== undefined) return "orders";
    return "json";
  }

  // row draws one condition; conditions the form cannot show stay JSON
  function row(c) {
    var kind = kindOf(c), inner = c.not || c;
    var r = el("div", { "class": "condition searchbar", "data-kind": kind });
    var k = select("b-kind", ["event", "attribute", "spent", "orders", "json"], kind);
    var not = el("input", { type: "checkbox", "class": "b-not", title: "not" }); not.checked = !!c.not;
    r.append(el("label", { "class": "check" }, [not, "not"]), k);
    if (kind === "event") {
      var w = (inner.where || [])[0] || {};
      r.append(input("b-event", inner.event, "event, e.g. add_to_cart", { list: "event-types" }),
        input("b-prop", w.prop, "where prop (source)"), select("b-op", ops, w.op || "eq"), input("b-value", w.value, "value"),
        select("b-count-op", counts, (inner.count || {}).op || "gte"), input("b-count", (inner.count || {}).value === undefined ? 1 : inner.count.value, "times"),
        input("b-within", inner.within, "within, e.g. 720h"));
    } else if (kind === "attribute") {
      r.append(input("b-attr", inner.attribute, "attribute, e.g. city"), select("b-op", ops, inner.op || "eq"), input("b-value", inner.value, "value"));
    } else if (kind === "spent" || kind === "orders") {
      var m = inner[kind];
      r.append(select("b-count-op", counts, m.op || "gte"), input("b-amount", m.value, kind === "spent" ? "amount" : "orders"),
        input("b-currency", m.currency, "currency, e.g. EUR"), input("b-within", inner.within, "within, e.g. 2160h"));
    } else {
      r.append(input("b-json", c, "a condition as JSON"));
    }
    var del = el("button", { type: "button", "class": "link b-remove" }, ["remove"]);
    r.append(del);
    k.addEventListener("change", function () {
      var fresh = { event: { event: "page_view" }, attribute: { attribute: "city", op: "eq", value: "" },
        spent: { spent: { op: "gte", value: 100, currency: "EUR" }, within: "2160h" }, orders: { orders: { op: "gte", value: 2 } }, json: read(r) }[k.value];
      r.replaceWith(row(fresh)); write();
    });
    del.addEventListener("click", function () { r.remove(); write(); });
    r.addEventListener("input", write);
    r.addEventListener("change", write);
    return r;
  }
  function q(r, cls) { var e = r.querySelector("." + cls); return e ? e.value : ""; }
  function read(r) {
    var c, kind = r.getAttribute("data-kind");
    if (kind === "event") {
      c = { event: q(r, "b-event") };
      if (q(r, "b-prop")) c.where = [{ prop: q(r, "b-prop"), op: q(r, "b-op"), value: value(q(r, "b-value"), q(r, "b-op")) }];
      if (q(r, "b-op") === "exists" && c.where) delete c.where[0].value;
      c.count = { op: q(r, "b-count-op"), value: value(q(r, "b-count"), "") };
      if (q(r, "b-within")) c.within = q(r, "b-within");
    } else if (kind === "attribute") {
      c = { attribute: q(r, "b-attr"), op: q(r, "b-op") };
      if (c.op !== "exists") c.value = value(q(r, "b-value"), c.op);
    } else if (kind === "spent" || kind === "orders") {
      c = {}; c[kind] = { op: q(r, "b-count-op"), value: value(q(r, "b-amount"), "") };
      if (q(r, "b-currency")) c[kind].currency = q(r, "b-currency");
      if (q(r, "b-within")) c.within = q(r, "b-within");
    } else {
      try { c = JSON.parse(q(r, "b-json")); } catch (e) { c = q(r, "b-json"); }
    }
    if (r.querySelector(".b-not").checked) c = { not: c };
    return c;
  }
  function write() {
    var conds = Array.prototype.map.call(list.children, read);
    rule.value = JSON.stringify({ name: name.value, match: match.value, conditions: conds }, null, 1);
    preview();
  }
  function draw() {
    var d;
    try { d = JSON.parse(rule.value || "{}"); } catch (e) { return false; }
    name.value = d.name || ""; match.value = d.match === "any" ? "any" : "all";
    list.replaceChildren.apply(list, (Array.isArray(d.conditions) ? d.conditions : []).map(row));
    return true;
  }

  var timer, seq = 0;
  function preview() {
    clearTimeout(timer);
    timer = setTimeout(function () {
      var mine = ++seq;
      var count = document.getElementById("preview-count"), sample = document.getElementById("preview-sample");
      count.textContent = "…";
      fetch("/segments/preview", { method: "POST", headers: { "Content-Type": "application/json" }, body: rule.value })
        .then(function (resp) { return resp.json(); })
        .then(function (res) {
          if (mine !== seq) return;
          if (res.error) {
            count.textContent = "—";
            sample.textContent = (res.error.field ? res.error.field + ": " : "") + res.error.message;
            return;
          }
          count.textContent = res.count.toLocaleString();
          sample.textContent = res.sample.length ? "e.g. " + res.sample.map(function (m) { return m.email || "anonymous " + m.anonymous_id; }).join(", ") : "";
        })["catch"](function () { if (mine === seq) count.textContent = "?"; });
    }, 300);
  }
  name.addEventListener("input", write);
  match.addEventListener("change", write);
  rule.addEventListener("input", function () { if (draw()) preview(); });
  document.getElementById("add-condition").addEventListener("click", function () {
    list.append(row({ event: "page_view" })); write();
  });
  draw();
  preview();
})();
