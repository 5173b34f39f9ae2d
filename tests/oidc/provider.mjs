// A real OpenID Connect provider for the tests: the OpenID-certified `oidc-provider`
// (npm), configured from the JSON in OIDC_TEST_CONFIG:
//   {"port": 0, "clients": [{client_id, client_secret, redirect_uris}],
//    "jwks": {"keys": [private JWK]}, "accounts": {"alice": {"email": ..., "email_verified": true}}}
// Its development login form accepts any login name known in `accounts` (any password);
// consent is given at once. PKCE is required of every client. Prints "READY <issuer>".
import http from "node:http";
import Provider from "oidc-provider";

const config = JSON.parse(process.env.OIDC_TEST_CONFIG);
const server = http.createServer();
await new Promise((resolve) => server.listen(config.port || 0, "127.0.0.1", resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: config.clients.map((c) => ({
    grant_types: ["authorization_code"],
    response_types: ["code"],
    token_endpoint_auth_method: "client_secret_basic",
    ...c,
  })),
  jwks: config.jwks,
  cookies: { keys: ["opsloop-test-provider"] },
  claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"] },
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
  async findAccount(ctx, id) {
    const account = config.accounts[id];
    if (!account) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...account }; } };
  },
  // First-party client: no consent screen.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope("openid email profile");
    grant.addOIDCClaims(["email", "email_verified", "name"]);
    await grant.save();
    return grant;
  },
});
provider.on("server_error", (ctx, err) => console.error("server_error", err));
server.on("request", provider.callback());
console.log(`READY ${issuer}`);
