// Accessibility helpers every page loads (docs/accessibility.md):
// - pglab.scrollBehavior(): "auto" when the system asks for reduced motion,
//   else "smooth"; scripts pass it to scrollIntoView.
// - pglab.leaveOnEscapeTab(el): inside `el` (an editor, a terminal) Tab is
//   typed, so Escape then Tab moves focus on instead; Shift+Tab always moves
//   back (the editor dedents with Ctrl+[ instead).
// - Scroll boxes the keyboard cannot reach otherwise (code blocks, wide
//   tables, logs that overflow and hold nothing focusable) get tabindex=0,
//   so arrow keys scroll them; kept up to date as pages change and resize.
(function () {
  "use strict";
  const pglab = (window.pglab = window.pglab || {});
  const reduce = window.matchMedia ? matchMedia("(prefers-reduced-motion: reduce)") : null;
  pglab.scrollBehavior = () => (reduce && reduce.matches ? "auto" : "smooth");

  pglab.leaveOnEscapeTab = function (el) {
    let armed = false;
    // Capture phase: runs before the editor's or terminal's own key handler,
    // which never sees this Tab, so the browser moves focus as usual.
    el.addEventListener("keydown", (e) => {
      if (e.key === "Tab" && (armed || e.shiftKey) && !e.ctrlKey && !e.altKey && !e.metaKey) {
        armed = false;
        e.stopPropagation();
        return;
      }
      armed = e.key === "Escape";
    }, true);
    el.addEventListener("focusout", () => { armed = false; });
  };

  const SCROLLERS = "pre, .table-wrap, .con-table-wrap, .con-results, .dock-body, .sandbox-log-lines, " +
    ".sandbox-inspect-out, .plan-sql, .lab-table, .matrix-wrap, .con-search ul";
  const FOCUSABLE = "a[href], button, input, select, textarea, summary, [tabindex]";
  function scrolls(el) {
    const cs = getComputedStyle(el);
    return (el.scrollWidth > el.clientWidth + 1 && /auto|scroll/.test(cs.overflowX)) ||
      (el.scrollHeight > el.clientHeight + 1 && /auto|scroll/.test(cs.overflowY));
  }
  function reachable() {
    for (const el of document.querySelectorAll(SCROLLERS)) {
      const mine = el.dataset.a11yTab === "1";
      const hasFocusable = Array.prototype.some.call(el.querySelectorAll(FOCUSABLE), (f) => f.tabIndex >= 0);
      if (scrolls(el) && !hasFocusable) {
        if (!el.hasAttribute("tabindex")) { el.tabIndex = 0; el.dataset.a11yTab = "1"; }
      } else if (mine) {
        el.removeAttribute("tabindex");
        delete el.dataset.a11yTab;
      }
    }
  }
  let timer = null;
  function soon() {
    if (timer) return;
    timer = setTimeout(() => { timer = null; reachable(); }, 150);
  }
  pglab.refreshScrollers = reachable;
  function start() {
    reachable();
    new MutationObserver(soon).observe(document.body, { childList: true, subtree: true });
    window.addEventListener("resize", soon);
    document.addEventListener("toggle", soon, true);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
