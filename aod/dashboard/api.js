// Same-origin JSON calls; the cookie set by /login carries the token.
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function call(method, path, body) {
  const init = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = null; }
  // The cookie no longer matches the daemon's token (a new data dir, a rotated token): say so once
  // for the whole page instead of every view failing on its own.
  if (response.status === 401) document.dispatchEvent(new CustomEvent("aod:unauthorized"));
  if (!response.ok) {
    const err = parsed && parsed.error ? parsed.error : { code: "http_" + response.status, message: text };
    throw new ApiError(response.status, err.code, err.message);
  }
  return parsed;
}

export const get = (path) => call("GET", path);
export const post = (path, body = {}) => call("POST", path, body);

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const text = q.toString();
  return text ? "?" + text : "";
}
