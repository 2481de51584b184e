// Accounts in the browser: the signed-in user and sign-out button in the top
// bar of every page ([data-user-menu], filled from GET /api/me), and the
// instructor's classroom pages (create, rotate, open/close, reset, CSV import).
(function () {
  const el = (tag, attrs, text) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  };

  async function fillUserMenu() {
    const menu = document.querySelector("[data-user-menu]");
    if (!menu) return;
    let me = null;
    try {
      // A plain fetch, not pglab.api: a 401 here only means "show Sign in",
      // it must not redirect pages anyone may read.
      const res = await fetch("/api/me", { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (res.ok) me = await res.json();
    } catch (_) { /* offline: leave the menu empty */ }
    menu.replaceChildren();
    if (!me) {
      if (!location.pathname.startsWith("/login")) {
        menu.append(el("a", { href: "/login?next=" + encodeURIComponent(location.pathname + location.search), class: "user-signin" }, "Sign in"));
      }
      return;
    }
    if (me.role === "instructor") menu.append(el("a", { href: "/instructor", class: "user-link" }, "Classrooms"));
    else menu.append(el("a", { href: "/progress", class: "user-link" }, "My progress"));
    menu.append(el("span", { class: "user-name", "data-testid": "user-name", title: me.role }, me.username));
    const form = el("form", { method: "post", action: "/logout", class: "user-signout" });
    form.append(el("input", { type: "hidden", name: "csrf_token", value: pglab.csrfToken() }));
    form.append(el("button", { type: "submit" }, "Sign out"));
    menu.append(form);
  }

  function showError(form, err) {
    const box = form && form.querySelector("[data-form-error]");
    if (box) { box.textContent = err.message; box.hidden = false; } else { alert(err.message); }
  }

  function classroomPages() {
    const create = document.querySelector("[data-create-classroom]");
    if (create) create.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        const c = await pglab.api("POST", "/api/instructor/classrooms", { name: create.elements.name.value });
        location.href = "/instructor/classrooms/" + c.id;
      } catch (err) { showError(create, err); }
    });

    const room = document.querySelector("[data-classroom]");
    if (!room) return;
    const id = room.dataset.classroom;
    room.querySelectorAll("[data-action]").forEach((b) => b.addEventListener("click", async () => {
      const action = b.dataset.action;
      if (action === "rotate" && !confirm("Make a new join code? The current one stops working.")) return;
      try { await pglab.api("POST", `/api/instructor/classrooms/${id}/${action}`); location.reload(); }
      catch (err) { alert(err.message); }
    }));
    room.querySelectorAll("[data-reset-password]").forEach((b) => b.addEventListener("click", async () => {
      if (!confirm(`Give ${b.dataset.username} a new password? Their sessions end now.`)) return;
      try {
        const r = await pglab.api("POST", `/api/instructor/users/${b.dataset.resetPassword}/password`);
        b.replaceWith(el("code", { class: "new-password" }, r.password));
      } catch (err) { alert(err.message); }
    }));
    room.querySelectorAll("[data-unix-time]").forEach((td) => {
      const t = Number(td.dataset.unixTime);
      if (t) td.textContent = new Date(t * 1000).toLocaleString();
    });
    const form = room.querySelector("[data-import]");
    if (!form) return;
    const file = form.querySelector("[data-import-file]");
    const text = form.querySelector("[data-import-text]");
    file.addEventListener("change", async () => { if (file.files[0]) text.value = await file.files[0].text(); });
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        const r = await pglab.api("POST", `/api/instructor/classrooms/${id}/import`, { csv: text.value });
        const rows = room.querySelector("[data-generated-rows]");
        rows.replaceChildren();
        for (const u of r.created) {
          const tr = el("tr");
          tr.append(el("td", {}, u.username), el("td", {}, u.password || "(their own)"));
          rows.append(tr);
        }
        room.querySelector("[data-generated]").hidden = false;
        text.value = "";
        form.querySelector("[data-form-error]").hidden = true;
      } catch (err) { showError(form, err); }
    });
  }

  fillUserMenu();
  classroomPages();
})();
