/* GW Portal plots: every element with data-figure="<id>" is drawn from the JSON in <script id="<id>">
   (written by Django's json_script: {data: [...traces], layout: {...}}). plotly.min.js is served locally. */
(function () {
  "use strict";
  function hasPoints(fig) {
    return (fig.data || []).some(function (t) {
      return (t.x && t.x.length) || (t.z && t.z.length) || (t.values && t.values.length);
    });
  }
  function draw(el) {
    var source = document.getElementById(el.dataset.figure);
    if (!source) { return; }
    var fig = JSON.parse(source.textContent);
    if (!hasPoints(fig)) {
      el.classList.add("empty");
      el.textContent = (el.dataset.empty || "No data for this period.");
      return;
    }
    var layout = Object.assign({autosize: true}, fig.layout || {});
    Plotly.newPlot(el, fig.data, layout, {responsive: true, displaylogo: false});
    el.style.minHeight = "0";
    el.classList.add("drawn");
  }
  function drawAll() {
    if (typeof Plotly === "undefined") {
      document.querySelectorAll("[data-figure]").forEach(function (el) {
        el.textContent = "Plotting library not loaded.";
      });
      return;
    }
    document.querySelectorAll("[data-figure]").forEach(draw);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
