// The console: polls /admin/console/state every 2 s and draws each room's numbers, the
// shop's numbers as this instance sees them, and the last 15 minutes as charts. The
// controls call the admin API with the console's session cookie and the
// X-Anteroom-Console header (which a form on another site cannot send).
(function () {
  "use strict";
  var roomsRoot = document.getElementById("rooms");
  var problem = document.getElementById("problem");
  var cards = {};

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k]; else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { node.appendChild(c); });
    return node;
  }
  function fmt(n, unit) {
    if (n === null || n === undefined) return "–";
    var text = Number(n).toLocaleString("en", { maximumFractionDigits: 1 });
    return unit ? text + " " + unit : text;
  }
  function say(text) {
    problem.hidden = !text;
    problem.textContent = text || "";
  }

  function call(method, path, body) {
    return fetch(path, {
      method: method,
      credentials: "same-origin",
      headers: { "X-Anteroom-Console": "1", "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (r) {
      if (r.status === 401) { location.reload(); throw new Error("logged out"); }
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (!r.ok) throw new Error(data.error || ("HTTP " + r.status));
        return data;
      });
    });
  }

  function number(label, key, scope) {
    return el("div", {}, [el("dt", { text: label + (scope ? " " : "") }, scope ? [el("span", { "class": "scope " + scope, text: scope === "local" ? "this instance" : "global" })] : []), el("dd", { "data-k": key, text: "–" })]);
  }
  function chart(key, caption) {
    return el("figure", {}, [el("svg", { "data-chart": key, viewBox: "0 0 300 90", role: "img", "aria-label": caption }), el("figcaption", { text: caption })]);
  }
  function field(label, input) {
    return el("div", {}, [el("label", { text: label }), input]);
  }

  function card(room) {
    var root = el("section", { "class": "card", "data-room": room });
    var rate = el("input", { type: "number", min: "1", "data-k": "rate-input", "aria-label": "admissions per minute" });
    var capacity = el("input", { type: "number", min: "1", "data-k": "capacity-input", "aria-label": "capacity" });
    var message = el("input", { type: "text", maxlength: "280", "class": "message", "data-k": "message-input", "aria-label": "message to the line" });
    function button(text, action, cls) { return el("button", { type: "button", "data-action": action, "class": cls || "", text: text }); }
    var controls = el("div", { "class": "controls" }, [
      el("fieldset", {}, [button("Pause", "pause", "danger"), button("Resume", "resume"), button("Close", "close", "danger"), button("Open", "open")]),
      el("fieldset", {}, [field("admissions per minute", rate), button("Set rate", "rate"), button("Auto", "auto", "quiet")]),
      el("fieldset", {}, [field("capacity", capacity), button("Set capacity", "capacity"), button("Reset to config", "reset", "quiet")]),
      el("fieldset", {}, [field("message to the line", message), button("Show", "message"), button("Clear", "clear-message", "quiet")])
    ]);
    root.appendChild(el("h2", { text: room + " " }, [el("span", { "class": "badges", "data-k": "badges" })]));
    root.appendChild(el("dl", { "class": "numbers" }, [
      number("in line", "queue_length", "global"),
      number("admissions/min (measured)", "measured_admissions_per_minute", "global"),
      number("in force", "admit_per_minute", "global"),
      number("configured", "configured_admit_per_minute"),
      number("controller", "controller_reason"),
      number("inside / capacity", "inside", "global"),
      number("time in line p50", "wait_p50", "local"),
      number("time in line p90", "wait_p90", "local"),
      number("message", "message", "global")
    ]));
    root.appendChild(el("div", { "class": "charts" }, [
      chart("queue_length", "in line"),
      chart("admissions", "admissions/min: measured / in force"),
      chart("inside", "inside / capacity")
    ]));
    root.appendChild(controls);
    controls.addEventListener("click", function (event) {
      var action = event.target.getAttribute && event.target.getAttribute("data-action");
      if (!action) return;
      var base = "/admin/rooms/" + encodeURIComponent(room);
      var done;
      switch (action) {
        case "pause": case "resume": case "close": case "open":
          done = call("POST", base + "/" + action); break;
        case "rate": done = call("PATCH", base, { admit_per_minute: Number(rate.value) }); break;
        case "auto": done = call("PATCH", base, { admit_per_minute: "auto" }); break;
        case "capacity": done = call("PATCH", base, { max_active_users: Number(capacity.value) }); break;
        case "reset": done = call("PATCH", base, { reset: true }); break;
        case "message": done = call("PUT", base + "/message", { message: message.value }); break;
        case "clear-message": done = call("DELETE", base + "/message").then(function (r) { message.value = ""; return r; }); break;
      }
      done.then(function () { say(""); poll(); }, function (e) { say(room + ": " + e.message); });
    });
    roomsRoot.appendChild(root);
    return root;
  }

  function set(root, key, text) {
    root.querySelectorAll("[data-k=" + key + "]").forEach(function (node) {
      if (node.textContent !== String(text)) node.textContent = text;
    });
  }

  // A small line chart: each series scaled to the largest value of all.
  function draw(svg, times, series) {
    if (!svg) return;
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    if (times.length < 2) return;
    var t0 = times[0], span = Math.max(1, times[times.length - 1] - t0);
    var max = 0;
    series.forEach(function (s) { s.forEach(function (v) { if (v != null && v > max) max = v; }); });
    max = max > 0 ? max : 1;
    series.forEach(function (s, i) {
      var points = [];
      s.forEach(function (v, j) {
        if (v == null) return;
        points.push(((times[j] - t0) / span * 296 + 2).toFixed(1) + "," + (86 - v / max * 76).toFixed(1));
      });
      var line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
      line.setAttribute("points", points.join(" "));
      line.setAttribute("class", "s" + i);
      svg.appendChild(line);
    });
    var label = document.createElementNS("http://www.w3.org/2000/svg", "text");
    label.setAttribute("x", "4"); label.setAttribute("y", "10");
    label.textContent = fmt(max);
    svg.appendChild(label);
  }

  function render(state) {
    document.getElementById("version").textContent = "anteroom " + state.version;
    document.getElementById("store").textContent = state.store.backend + (state.store.up ? " (up)" : " (UNREACHABLE)");
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
    var shop = document.getElementById("shop");
    set(shop, "origin_rps", fmt(state.origin.origin_rps));
    set(shop, "origin_p50_ms", fmt(state.origin.origin_p50_ms, "ms"));
    set(shop, "origin_p90_ms", fmt(state.origin.origin_p90_ms, "ms"));
    set(shop, "origin_errors_per_s", fmt(state.origin.origin_errors_per_s));
    set(shop, "shed_per_s", fmt(state.origin.shed_per_s));
    var times = state.history.map(function (p) { return p.t; });
    draw(shop.querySelector("[data-chart=origin_rps]"), times, [state.history.map(function (p) { return p.origin_rps; })]);
    draw(shop.querySelector("[data-chart=origin_latency]"), times, [
      state.history.map(function (p) { return p.origin_p50_ms; }),
      state.history.map(function (p) { return p.origin_p90_ms; })
    ]);
    state.rooms.forEach(function (r) {
      var root = cards[r.room] || (cards[r.room] = card(r.room));
      var badges = [];
      if (r.paused) badges.push(["paused", "alarm"]);
      if (r.closed) badges.push(["closed", "alarm"]);
      if (r.recounting) badges.push(["recounting", "alarm"]);
      if (r.rate_pinned) badges.push(["rate pinned", ""]);
      badges.push([r.admission, ""]);
      var holder = root.querySelector("[data-k=badges]");
      var text = badges.map(function (b) { return b[0]; }).join(" ");
      if (holder.getAttribute("data-text") !== text) {
        holder.setAttribute("data-text", text);
        while (holder.firstChild) holder.removeChild(holder.firstChild);
        badges.forEach(function (b) { holder.appendChild(el("span", { "class": b[1], text: b[0] })); });
      }
      set(root, "queue_length", fmt(r.queue_length));
      set(root, "measured_admissions_per_minute", fmt(r.measured_admissions_per_minute));
      set(root, "admit_per_minute", fmt(r.admit_per_minute));
      set(root, "configured_admit_per_minute", fmt(r.configured_admit_per_minute));
      set(root, "controller_reason", r.controller_reason || "—");
      set(root, "inside", fmt(r.active_sessions) + " / " + fmt(r.max_active_users));
      set(root, "wait_p50", r.instance.wait_p50_s == null ? "–" : fmt(r.instance.wait_p50_s, "s"));
      set(root, "wait_p90", r.instance.wait_p90_s == null ? "–" : fmt(r.instance.wait_p90_s, "s"));
      set(root, "message", r.message || "—");
      var mine = state.history.map(function (p) {
        return p.rooms.filter(function (x) { return x.room === r.room; })[0] || {};
      });
      draw(root.querySelector("[data-chart=queue_length]"), times, [mine.map(function (x) { return x.queue_length; })]);
      draw(root.querySelector("[data-chart=admissions]"), times, [
        mine.map(function (x) { return x.admitted_per_minute; }),
        mine.map(function (x) { return x.admit_per_minute; })
      ]);
      draw(root.querySelector("[data-chart=inside]"), times, [
        mine.map(function (x) { return x.active_sessions; }),
        mine.map(function (x) { return x.max_active_users; })
      ]);
    });
  }

  var timer = null;
  function poll() {
    clearTimeout(timer);
    fetch("/admin/console/state", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) { location.reload(); throw new Error("logged out"); }
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (state) { render(state); say(""); }, function (e) { say("Cannot read the gateway's state: " + e.message); })
      .then(function () { timer = setTimeout(poll, 2000); });
  }
  poll();
})();
