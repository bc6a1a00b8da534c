/* Survey status plots (plotly.js, served locally). Elements with data-gw-status="<kind>" are drawn from
   the JSON in <script id="<data-source>"> written by Django's json_script:
     sky-map            the whole 7DS grid in a Hammer-Aitoff (equal-area) projection, observed tiles coloured
     night-conditions   one measure of one night, a trace per unit (seeing, sky, clouds, humidity, wind)
     conditions-series  one measure night by night: median of the unit medians, min-max band            */
(function () {
  "use strict";
  if (window.GWStatus) { return; }
  var D2R = Math.PI / 180;
  var CONFIG = {responsive: true, displaylogo: false};
  var SMALL = {responsive: true, displaylogo: false, displayModeBar: false};

  /* Hammer-Aitoff of (RA, Dec) in degrees; RA grows to the left, RA 0 in the centre. */
  function hammer(ra, dec) {
    var lon = ((ra + 180) % 360 + 360) % 360 - 180;  // -180..180
    var l = -lon * D2R, b = dec * D2R;
    var d = Math.sqrt(1 + Math.cos(b) * Math.cos(l / 2));
    return [2 * Math.SQRT2 * Math.cos(b) * Math.sin(l / 2) / d, Math.SQRT2 * Math.sin(b) / d];
  }

  /* The grid from its rule: ring r at Dec -90 + r * step, N_r tiles from RA 0; numbered ring by ring. */
  function gridTiles(ringCounts, step) {
    var out = [], index = 0;
    for (var r = 0; r < ringCounts.length; r++) {
      var n = ringCounts[r], dec = -90 + r * step;
      for (var k = 0; k < n; k++) { out.push({index: index++, ra: k * 360 / n, dec: dec}); }
    }
    return out;
  }

  function graticule() {
    var traces = [], x, y, p, i;
    [-60, -30, 0, 30, 60].forEach(function (dec) {
      x = []; y = [];
      for (i = -180; i <= 180; i += 2) { p = hammer(i === 180 ? 179.999 : i, dec); x.push(p[0]); y.push(p[1]); }
      traces.push({x: x, y: y});
    });
    [-179.999, -120, -60, 0, 60, 120, 179.999].forEach(function (ra) {
      x = []; y = [];
      for (i = -90; i <= 90; i += 2) { p = hammer(ra, i); x.push(p[0]); y.push(p[1]); }
      traces.push({x: x, y: y});
    });
    return traces.map(function (t) {
      return {type: "scatter", mode: "lines", x: t.x, y: t.y, hoverinfo: "skip", showlegend: false,
              line: {color: "rgba(90,100,120,0.35)", width: 1}};
    });
  }

  function labels() {
    var x = [], y = [], text = [];
    [0, 60, 120, 180, 240, 300].forEach(function (ra) {
      var p = hammer(ra === 180 ? 179.999 : ra, 0); x.push(p[0]); y.push(p[1]); text.push((ra / 15) + "h");
    });
    [-60, -30, 30, 60].forEach(function (dec) {
      var p = hammer(179.999, dec); x.push(p[0]); y.push(p[1]); text.push(dec + "°");
    });
    return {type: "scatter", mode: "text", x: x, y: y, text: text, hoverinfo: "skip", showlegend: false,
            textfont: {size: 10, color: "#667"}};
  }

  var MEASURES = {
    filters: {col: "n_filters", title: "filters"},
    nights: {col: "n_nights", title: "nights"},
    exptime: {col: "exptime_h", title: "exposure (h)"},
    last_night: {col: "last_night", title: "last night"}
  };

  function skyMap(el, data) {
    var measure = MEASURES[el.dataset.measure] ? el.dataset.measure : "filters";
    var m = MEASURES[measure], t = data.tiles, seen = {}, i;
    var ox = [], oy = [], val = [], names = [], hover = [];
    var positions = gridTiles(data.ring_counts, data.ring_step_deg);
    for (i = 0; i < t.index.length; i++) {
      var tile = positions[t.index[i]];
      if (!tile) { continue; }  // a tile name beyond the computed grid has no position
      seen[t.index[i]] = true;
      var p = hammer(tile.ra, tile.dec);
      ox.push(p[0]); oy.push(p[1]); names.push(t.name[i]);
      var v = t[m.col][i];
      val.push(measure === "last_night" ? (v ? Date.parse(v) / 86400000 : null) : v);
      hover.push(t.name[i] + "<br>frames " + t.n_frames[i] + " · nights " + t.n_nights[i] + " · filters " + t.n_filters[i] +
                 "<br>exposure " + t.exptime_h[i] + " h · last " + t.last_night[i] + "<br>" + (t.programs[i] || []).join(" "));
    }
    var gx = [], gy = [];
    positions.forEach(function (tile) {
      if (seen[tile.index]) { return; }
      var p = hammer(tile.ra, tile.dec); gx.push(p[0]); gy.push(p[1]);
    });
    var colorbar = {title: {text: m.title}, thickness: 14};
    if (measure === "last_night" && val.length) {
      var lo = Math.min.apply(null, val.filter(function (v) { return v !== null; }));
      var hi = Math.max.apply(null, val.filter(function (v) { return v !== null; }));
      var ticks = [], text = [];
      for (i = 0; i <= 4; i++) {
        var d = lo + (hi - lo) * i / 4; ticks.push(d);
        text.push(new Date(d * 86400000).toISOString().slice(0, 10));
      }
      colorbar.tickvals = ticks; colorbar.ticktext = text;
    }
    var traces = graticule();
    traces.push({type: "scattergl", mode: "markers", name: "not observed", x: gx, y: gy, hoverinfo: "skip",
                 marker: {size: 3, color: "rgba(150,155,170,0.28)"}});
    traces.push({type: "scattergl", mode: "markers", name: "observed", x: ox, y: oy, text: hover, customdata: names,
                 hovertemplate: "%{text}<extra></extra>",
                 marker: {size: 6, color: val, colorscale: "Viridis", showscale: true, colorbar: colorbar,
                          line: {width: 0.5, color: "rgba(30,35,50,0.6)"}}});
    traces.push(labels());
    var layout = {
      margin: {l: 10, r: 10, t: 10, b: 10}, height: 540, showlegend: false, hovermode: "closest",
      xaxis: {visible: false, range: [-2.9, 2.9]},
      yaxis: {visible: false, range: [-1.5, 1.5], scaleanchor: "x", scaleratio: 1},
      plot_bgcolor: "#fff", paper_bgcolor: "#fff"
    };
    Plotly.newPlot(el, traces, layout, CONFIG).then(function () {
      el.classList.add("drawn");
      el.dataset.observed = String(ox.length);
      el.dataset.unobserved = String(gx.length);
      el.on("plotly_click", function (ev) {
        var pt = ev.points && ev.points[0];
        if (pt && pt.customdata) { window.location.href = (el.dataset.tileBase || "/survey/tiles/") + pt.customdata + "/"; }
      });
    });
  }

  function measureInfo(data, key) {
    return (data.measures || []).filter(function (m) { return m.key === key; })[0] || {label: key, unit: ""};
  }

  function nightConditions(el, data) {
    var key = el.dataset.measure, info = measureInfo(data, key), traces = [];
    Object.keys(data.series || {}).sort().forEach(function (unit) {
      var s = data.series[unit], y = s[key] || [];
      if (y.some(function (v) { return v !== null; })) {
        traces.push({type: "scatter", mode: "lines+markers", name: unit, x: s.t, y: y, connectgaps: true, marker: {size: 4}});
      }
    });
    if (!traces.length) { el.classList.add("empty"); el.textContent = info.label + ": no value this night."; return; }
    Plotly.newPlot(el, traces, {
      title: {text: info.label + " (" + info.unit + ")", font: {size: 13}, x: 0.02, xanchor: "left"}, height: 230,
      margin: {l: 50, r: 10, t: 34, b: 40}, xaxis: {type: "date"}, legend: {orientation: "h", y: -0.25}
    }, SMALL).then(function () { el.classList.add("drawn"); });
  }

  function conditionsSeries(el, data) {
    var key = el.dataset.measure, info = measureInfo(data, key), s = (data.series || {})[key];
    if (!s || !s.median.some(function (v) { return v !== null; })) {
      el.classList.add("empty"); el.textContent = info.label + ": no value."; return;
    }
    var x = data.nights;
    var traces = [
      {type: "scatter", mode: "lines", x: x, y: s.max, line: {width: 0}, hoverinfo: "skip", showlegend: false, connectgaps: false},
      {type: "scatter", mode: "lines", x: x, y: s.min, fill: "tonexty", fillcolor: "rgba(31,95,191,0.15)", line: {width: 0},
       name: "min-max of units", connectgaps: false},
      {type: "scatter", mode: "lines+markers", x: x, y: s.median, name: "median", line: {color: "#1f5fbf"}, marker: {size: 4}}
    ];
    Plotly.newPlot(el, traces, {
      title: {text: info.label + " (" + info.unit + ")", font: {size: 13}, x: 0.02, xanchor: "left"}, height: 220,
      margin: {l: 50, r: 10, t: 34, b: 40}, xaxis: {type: "date"}, showlegend: false
    }, SMALL).then(function () { el.classList.add("drawn"); });
  }

  var KINDS = {"sky-map": skyMap, "night-conditions": nightConditions, "conditions-series": conditionsSeries};
  var cache = {};

  function source(id) {
    if (!(id in cache)) {
      var node = document.getElementById(id);
      cache[id] = node ? JSON.parse(node.textContent) : null;
    }
    return cache[id];
  }

  function drawAll() {
    document.querySelectorAll("[data-gw-status]").forEach(function (el) {
      if (el.dataset.gwDrawn) { return; }
      el.dataset.gwDrawn = "1";
      var draw = KINDS[el.dataset.gwStatus], data = source(el.dataset.source);
      if (!draw || !data) { return; }
      if (typeof Plotly === "undefined") { el.textContent = "Plotting library not loaded."; return; }
      try { draw(el, data); } catch (err) { el.textContent = "Plot failed: " + err; }
    });
  }

  window.GWStatus = {hammer: hammer, gridTiles: gridTiles, drawAll: drawAll};
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", drawAll); } else { drawAll(); }
})();
