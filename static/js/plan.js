// Plan view behaviour (templates/plan/view.html), no dependencies:
// expand / collapse all, jumping to a node or finding (opening its ancestors),
// keyboard moves between nodes (arrows, Home/End), and each node's
// aria-expanded kept true to its details element. Listeners sit on the
// document, so views inserted later (console results) work too.
(function () {
  "use strict";

  function summaries(view) {
    return Array.prototype.filter.call(
      view.querySelectorAll("details.pn > summary"),
      function (s) { return s.offsetParent !== null; }
    );
  }

  function openAncestors(el) {
    for (var p = el.parentElement; p; p = p.parentElement) {
      if (p.tagName === "DETAILS") p.open = true;
    }
  }

  function goTo(id) {
    var target = document.getElementById(id);
    if (!target) return false;
    openAncestors(target);
    if (target.tagName === "DETAILS") target.open = true;
    document.querySelectorAll(".pn-target").forEach(function (n) { n.classList.remove("pn-target"); });
    if (target.classList.contains("pn")) target.classList.add("pn-target");
    target.scrollIntoView({ block: "center", behavior: window.pglab && pglab.scrollBehavior ? pglab.scrollBehavior() : "smooth" });
    var summary = target.querySelector(":scope > summary");
    if (summary) summary.focus({ preventScroll: true });
    return true;
  }

  document.addEventListener("click", function (ev) {
    var el = ev.target.closest("[data-plan-expand],[data-plan-collapse],[data-plan-goto]");
    if (!el) return;
    if (el.hasAttribute("data-plan-goto")) {
      if (goTo(el.getAttribute("data-plan-goto"))) ev.preventDefault();
      return;
    }
    var view = el.closest("[data-plan-view]");
    if (!view) return;
    var open = el.hasAttribute("data-plan-expand");
    view.querySelectorAll("details.pn").forEach(function (d) { d.open = open; });
  });

  document.addEventListener("keydown", function (ev) {
    var s = ev.target;
    if (!s || s.tagName !== "SUMMARY" || !s.parentElement.classList.contains("pn")) return;
    var view = s.closest("[data-plan-view]");
    var details = s.parentElement;
    var list = summaries(view);
    var i = list.indexOf(s);
    var next = null;
    switch (ev.key) {
      case "ArrowDown": next = list[i + 1]; break;
      case "ArrowUp": next = list[i - 1]; break;
      case "Home": next = list[0]; break;
      case "End": next = list[list.length - 1]; break;
      case "ArrowRight":
        if (!details.open) { details.open = true; } else { next = list[i + 1]; }
        break;
      case "ArrowLeft":
        if (details.open && details.querySelector(":scope > .pn-children")) {
          details.open = false;
        } else {
          var parent = details.parentElement && details.parentElement.closest("details.pn");
          if (parent) next = parent.querySelector(":scope > summary");
        }
        break;
      default: return;
    }
    ev.preventDefault();
    if (next) next.focus();
  });

  // A node's treeitem (its summary) says whether it is expanded; `toggle`
  // does not bubble, so listen in the capture phase.
  document.addEventListener("toggle", function (ev) {
    var d = ev.target;
    if (!d.classList || !d.classList.contains("pn")) return;
    var s = d.querySelector(":scope > summary");
    if (s && s.hasAttribute("aria-expanded")) s.setAttribute("aria-expanded", String(d.open));
  }, true);

  if (location.hash.length > 1) {
    window.addEventListener("DOMContentLoaded", function () { goTo(location.hash.slice(1)); });
  }
})();
