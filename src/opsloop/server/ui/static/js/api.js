// The UI's only way to the server: the REST API under /api/v1.

export const API = "/api/v1";

/** An error the API answered with ({"error": {"code", "message"}}), or a network failure. */
export class ApiError extends Error {
  constructor(status, code, message, details = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);

/** The session's CSRF token, from the cookie the server set when this browser signed in. */
export function csrfToken() {
  for (const part of document.cookie.split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === "opsloop_csrf") return decodeURIComponent(v.join("="));
  }
  return null;
}

/** Headers a change needs on a server with sign-in: the session's CSRF token. */
export function authHeaders(method = "GET") {
  const csrf = SAFE.has(method.toUpperCase()) ? null : csrfToken();
  return csrf ? { "X-CSRF-Token": csrf } : {};
}

const SIGN_IN_CODES = new Set([
  "TOKEN_REQUIRED", "TOKEN_INVALID", "TOKEN_EXPIRED", "TOKEN_REVOKED",
  "SESSION_INVALID", "SESSION_EXPIRED",
]);

/** Off to the sign-in page, coming back here afterwards. */
export function signIn() {
  const next = location.pathname + location.search + location.hash;
  location.assign(`/auth/login?next=${encodeURIComponent(next)}`);
}

/** End the session (the server clears its cookies), then show the sign-in page. */
export async function signOut() {
  await fetch("/auth/logout", { method: "POST", headers: authHeaders("POST") });
  location.assign("/auth/login");
}

/** Call the API and return its JSON; throws ApiError with the server's message on failure. */
export async function api(path, opts = {}) {
  try {
    return await apiOnce(path, opts);
  } catch (err) {
    // Not signed in (or the session ended): the sign-in page, then back here.
    if (err instanceof ApiError && err.status === 401 && SIGN_IN_CODES.has(err.code)) signIn();
    throw err;
  }
}

async function apiOnce(path, { method = "GET", body, signal, query } = {}) {
  let url = API + path;
  if (query) {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v === null || v === undefined) continue;
      for (const item of Array.isArray(v) ? v : [v]) qs.append(k, String(item));
    }
    const s = qs.toString();
    if (s) url += (url.includes("?") ? "&" : "?") + s;
  }
  const init = { method, signal, headers: { Accept: "application/json", ...authHeaders(method) } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let res;
  try {
    res = await fetch(url, init);
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(0, "UNAVAILABLE", "Cannot reach the opsloop server. Is it running?");
  }
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch {
    if (!res.ok) throw new ApiError(res.status, "INTERNAL", `The server answered ${res.status} ${res.statusText}`);
    throw new ApiError(res.status, "INTERNAL", "The server answered something that is not JSON");
  }
  if (!res.ok) {
    const e = (data && data.error) || {};
    throw new ApiError(res.status, e.code || "INTERNAL", e.message || `HTTP ${res.status}`, e.details || null);
  }
  return data;
}

/** URL-encode each segment of an artifact path, keeping the slashes. */
export function encodePath(path) {
  return path.split("/").map(encodeURIComponent).join("/");
}

export function artifactUrl(runId, path) {
  return `${API}/runs/${encodeURIComponent(runId)}/artifacts/${encodePath(path)}`;
}

/**
 * Fetch at most `limit` bytes of an artifact (a Range request, and the stream is cut
 * there in case the server ignores the range). Returns {bytes, truncated}.
 */
export async function fetchArtifactHead(runId, path, limit, signal) {
  const res = await fetch(artifactUrl(runId, path), { headers: { Range: `bytes=0-${limit - 1}` }, signal });
  if (!res.ok) {
    let msg = `HTTP ${res.status}`;
    let code = "INTERNAL";
    try {
      const e = (await res.json()).error || {};
      msg = e.message || msg;
      code = e.code || code;
    } catch { /* not JSON */ }
    throw new ApiError(res.status, code, msg);
  }
  const total = totalSize(res);
  const reader = res.body.getReader();
  const parts = [];
  let got = 0;
  let truncated = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    got += value.length;
    if (got >= limit) {
      truncated = true;
      reader.cancel().catch(() => {});
      break;
    }
  }
  const bytes = new Uint8Array(Math.min(got, limit));
  let off = 0;
  for (const p of parts) {
    const take = Math.min(p.length, bytes.length - off);
    bytes.set(p.subarray(0, take), off);
    off += take;
    if (off >= bytes.length) break;
  }
  if (total !== null && total > bytes.length) truncated = true;
  return { bytes, truncated, total };
}

function totalSize(res) {
  const cr = res.headers.get("Content-Range");
  if (cr && cr.includes("/")) {
    const n = Number(cr.split("/")[1]);
    if (Number.isFinite(n)) return n;
  }
  if (res.status === 200) {
    const n = Number(res.headers.get("Content-Length"));
    if (Number.isFinite(n) && n > 0) return n;
  }
  return null;
}

/** Metric histories for `keys` of one run, in parallel requests of at most 20 keys. */
export async function metricHistories(runId, keys, { maxPoints = 2000, x = "step", signal } = {}) {
  const chunks = [];
  for (let i = 0; i < keys.length; i += 20) chunks.push(keys.slice(i, i + 20));
  const answers = await Promise.all(
    chunks.map((ks) =>
      api(`/runs/${encodeURIComponent(runId)}/metric-histories`, {
        query: { keys: ks, max_points: maxPoints, x },
        signal,
      }),
    ),
  );
  const out = {};
  for (const a of answers) for (const hist of a.histories) out[hist.key] = hist;
  return out;
}

/** A dataset version under /api/v1 by name and number ("latest" works too). */
export function datasetVersionPath(name, version) {
  return `/dataset-versions/${encodeURIComponent(`${name}@${version}`)}`;
}

/** A registered model under /api/v1/registry. */
export function modelPath(name) {
  return `/registry/models/${encodeURIComponent(name)}`;
}

/** One version of a registered model under /api/v1/registry. */
export function modelVersionPath(name, version) {
  return `${modelPath(name)}/versions/${encodeURIComponent(String(version))}`;
}
