// Light / dark theme: follows the system until the user picks one; T toggles.
(function () {
  const key = "pglab-theme";
  const saved = localStorage.getItem(key);
  if (saved) document.documentElement.dataset.theme = saved;
  function toggle() {
    const current = document.documentElement.dataset.theme ||
      (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
    const next = current === "dark" ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    localStorage.setItem(key, next);
  }
  document.addEventListener("click", (e) => {
    if (e.target.closest("[data-theme-toggle]")) toggle();
  });
  document.addEventListener("keydown", (e) => {
    const t = e.target;
    const typing = t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName) || t.closest?.(".cm-editor, .xterm");
    if (!typing && !e.ctrlKey && !e.metaKey && !e.altKey && e.key === "t") toggle();
  });
})();
