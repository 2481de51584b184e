// pglab's one way to call the JSON API from the browser: same-origin cookies
// plus the CSRF token (double-submit: the `pglab_csrf` cookie echoed in the
// X-CSRF-Token header). Every page loads this before its own scripts.
(function () {
  const pglab = (window.pglab = window.pglab || {});
  pglab.csrfToken = function () {
    const m = document.cookie.match(/(?:^|;\s*)pglab_csrf=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  };
  // pglab.api("POST", "/api/sql", {sql: "select 1"}) -> parsed JSON, or throws
  // an Error whose message is the server's {"error": "..."} text.
  pglab.api = async function (method, url, body) {
    const opts = {
      method,
      credentials: "same-origin",
      headers: { "X-CSRF-Token": pglab.csrfToken(), Accept: "application/json" },
    };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(url, opts);
    } catch (e) {
      throw new Error("cannot reach the pglab server: " + e.message);
    }
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (!res.ok) {
      if (res.status === 401 && !url.startsWith("/api/login")) {
        location.href = "/login?next=" + encodeURIComponent(location.pathname);
      }
      const err = new Error((data && data.error) || text || res.statusText);
      err.status = res.status;
      throw err;
    }
    return data;
  };
})();
