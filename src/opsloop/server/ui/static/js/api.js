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

const TOKEN_KEY = "opsloop.token";

/** The API token this browser keeps (a server with `--auth` needs one), as request headers. */
export function authHeaders() {
  const token = localStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** After a 401 for a missing, unknown, expired or revoked token: ask for one; true if given. */
function askForToken(code) {
  const why = code === "TOKEN_REQUIRED" ? "needs an API token" : `refused the token (${code})`;
  const token = window.prompt(
    `This opsloop server ${why}. Paste an API token (from \`opsloop tokens create\`); ` +
      "it is kept in this browser.",
  );
  if (!token) return false;
  localStorage.setItem(TOKEN_KEY, token.trim());
  return true;
}

/** Call the API and return its JSON; throws ApiError with the server's message on failure. */
export async function api(path, opts = {}) {
  const used = localStorage.getItem(TOKEN_KEY);
  try {
    return await apiOnce(path, opts);
  } catch (err) {
    // Calls refused together ask once: the others go again with the token given meanwhile.
    if (err instanceof ApiError && err.status === 401 && String(err.code).startsWith("TOKEN_")
        && (localStorage.getItem(TOKEN_KEY) !== used || askForToken(err.code))) {
      return apiOnce(path, opts);
    }
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
  const init = { method, signal, headers: { Accept: "application/json", ...authHeaders() } };
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
  const res = await fetch(artifactUrl(runId, path), { headers: { Range: `bytes=0-${limit - 1}`, ...authHeaders() }, signal });
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
