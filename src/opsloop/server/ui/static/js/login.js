// The sign-in page (/auth/login): trade an API token for a session cookie, then go on.

const form = document.getElementById("token-form");
const error = document.getElementById("login-error");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.hidden = true;
  const token = document.getElementById("token").value.trim();
  let res;
  try {
    res = await fetch("/auth/session", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ token }),
    });
  } catch {
    show("Cannot reach the opsloop server.");
    return;
  }
  if (res.ok) {
    window.location.assign(form.dataset.next || "/ui/");
    return;
  }
  let message = `The server answered ${res.status}.`;
  try {
    const e = (await res.json()).error || {};
    message = `${e.message || message} (${e.code || res.status})`;
  } catch { /* not JSON */ }
  show(message);
});

function show(message) {
  error.textContent = message;
  error.hidden = false;
}
