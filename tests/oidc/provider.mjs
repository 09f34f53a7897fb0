// A real OpenID Connect provider (npm `oidc-provider` v9) for WindFlow's SSO tests.
//
// Started by tests/oidc_provider.py; can also be run by hand:
//
//   PORT=9000 CLIENT_ID=windflow CLIENT_SECRET=s3cret \
//   REDIRECT_URIS=http://acme.localhost:8000/oidc/callback/ node tests/oidc/provider.mjs
//
// Configuration (environment variables, or `--name=value` arguments which win):
//   PORT            port to listen on, on 127.0.0.1 (0 or unset: any free port)
//   CLIENT_ID       the one registered client's id                     (required)
//   CLIENT_SECRET   its secret                                          (required)
//   REDIRECT_URIS   comma-separated exact redirect URIs                 (required)
//   POST_LOGOUT_REDIRECT_URIS  comma-separated (optional)
//   ACCOUNTS        optional JSON object: login -> claims that override the
//                   derived ones, e.g. {"eve@x.test": {"email_verified": false}}
//
// The issuer is http://127.0.0.1:<port> (plain http). Once listening it prints
// exactly one line `READY <issuer>` on stdout.
//
// Accounts: the built-in devInteractions login form accepts any login name (the
// password is ignored). The account's `sub` is the login name; its email is the
// login itself when it contains '@', otherwise `<login>@users.oidc.test`;
// email_verified is true; name/given_name/family_name are derived from the local
// part ("sam.smith@acme.test" -> "Sam Smith").
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import process from 'node:process';

import Provider from 'oidc-provider';

function option(name, fallback) {
  const prefix = `--${name.toLowerCase().replaceAll('_', '-')}=`;
  const arg = process.argv.slice(2).find((a) => a.startsWith(prefix));
  if (arg !== undefined) return arg.slice(prefix.length);
  const env = process.env[name];
  return env === undefined || env === '' ? fallback : env;
}

function required(name) {
  const value = option(name);
  if (value === undefined) {
    console.error(`provider.mjs: ${name} is required (env var or --${name.toLowerCase().replaceAll('_', '-')}=...)`);
    process.exit(2);
  }
  return value;
}

const list = (value) => (value || '').split(',').map((s) => s.trim()).filter(Boolean);

const port = Number.parseInt(option('PORT', '0'), 10);
const clientId = required('CLIENT_ID');
const clientSecret = required('CLIENT_SECRET');
const redirectUris = list(required('REDIRECT_URIS'));
const postLogoutRedirectUris = list(option('POST_LOGOUT_REDIRECT_URIS', ''));
const accountOverrides = JSON.parse(option('ACCOUNTS', '{}'));

if (!redirectUris.length) {
  console.error('provider.mjs: REDIRECT_URIS must list at least one URI');
  process.exit(2);
}

const capitalize = (s) => (s ? s[0].toUpperCase() + s.slice(1) : s);

function claimsFor(login) {
  const email = login.includes('@') ? login : `${login}@users.oidc.test`;
  const local = email.split('@')[0];
  const parts = local.split(/[._+-]+/).filter(Boolean).map(capitalize);
  const givenName = parts[0] || capitalize(local) || 'User';
  const familyName = parts.slice(1).join(' ') || 'Tester';
  return {
    sub: login,
    email,
    email_verified: true,
    name: `${givenName} ${familyName}`,
    given_name: givenName,
    family_name: familyName,
    ...(accountOverrides[login] || {}),
  };
}

// A fresh RS256 signing key for each run; RPs fetch it from the jwks endpoint.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = {
  ...privateKey.export({ format: 'jwk' }),
  kid: `test-${randomBytes(6).toString('hex')}`,
  alg: 'RS256',
  use: 'sig',
};

const configuration = {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: redirectUris,
    ...(postLogoutRedirectUris.length
      ? { post_logout_redirect_uris: postLogoutRedirectUris } : {}),
    response_types: ['code'],
    grant_types: ['authorization_code'],
    // mozilla-django-oidc posts client_id/client_secret in the body by default;
    // oidc-provider also accepts HTTP Basic for a client registered with
    // client_secret_post (both are "client secret" methods), so
    // OIDC_TOKEN_USE_BASIC_AUTH=True works as well.
    token_endpoint_auth_method: 'client_secret_post',
    id_token_signed_response_alg: 'RS256',
  }],
  jwks: { keys: [signingKey] },
  cookies: {
    // Signed cookies. `secure` is derived from the request (http here => not
    // secure), so cookies work over plain http on 127.0.0.1.
    keys: [randomBytes(32).toString('hex')],
  },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name'],
  },
  // Put the scope-requested claims (email, ...) into the id_token itself.
  conformIdTokenClaims: false,
  pkce: { required: () => false },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  async findAccount(ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return claimsFor(sub);
      },
    };
  },
  // Short-lived test process: keep the default in-memory adapter.
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 600,
    IdToken: 3600,
    Interaction: 3600,
    Session: 86400,
    Grant: 86400,
  },
};

const server = createServer();
// Outlive idle pooled client connections (httpx) between test steps, so a
// request never races the server closing a kept-alive socket (node: 5 s).
server.keepAliveTimeout = 120_000;
server.headersTimeout = 121_000;

server.on('error', (err) => {
  console.error(`provider.mjs: cannot listen on 127.0.0.1:${port}: ${err.message}`);
  process.exit(1);
});

server.listen(port, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, configuration);
  provider.on('server_error', (ctx, err) => {
    console.error('provider.mjs: server_error', err);
  });
  server.on('request', provider.callback());
  console.log(`READY ${issuer}`);
});

const shutdown = () => server.close(() => process.exit(0));
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
