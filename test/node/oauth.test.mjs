// Standard clients against a running keygate: oauth4webapi performs RFC 8414
// discovery, RFC 8693 token exchange and refresh, unmodified; the access
// token is then used on the proxy. KEYGATE_ISSUER names the server; the dev
// IdP under /dev supplies the ID token.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as oauth from 'oauth4webapi'

const issuer = new URL(process.env.KEYGATE_ISSUER ?? 'http://127.0.0.1:8080')
const insecure = { [oauth.allowInsecureRequests]: true }
const client = { client_id: 'dev-app' }

async function discover () {
  const res = await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure })
  return oauth.processDiscoveryResponse(issuer, res)
}

async function devIDToken (sub) {
  const res = await fetch(new URL('/dev/id-token', issuer), { method: 'POST', body: new URLSearchParams({ sub }) })
  assert.equal(res.status, 200)
  return (await res.json()).id_token
}

async function exchange (as, idToken, options = {}) {
  const res = await oauth.genericTokenEndpointRequest(as, client, oauth.None(),
    'urn:ietf:params:oauth:grant-type:token-exchange',
    { subject_token: idToken, subject_token_type: 'urn:ietf:params:oauth:token-type:id_token' },
    { ...insecure, ...options })
  return oauth.processGenericTokenEndpointResponse(as, client, res)
}

test('token exchange, refresh and a proxied call with oauth4webapi', async () => {
  const as = await discover()
  assert.equal(as.issuer, issuer.href.replace(/\/$/, ''))
  const tokens = await exchange(as, await devIDToken('node-alice'))
  assert.equal(tokens.token_type, 'bearer')
  assert.match(tokens.refresh_token, /^kgr_[A-Za-z0-9_-]{43}$/)
  assert.equal(tokens.scope, 'echo')

  const res = await oauth.refreshTokenGrantRequest(as, client, oauth.None(), tokens.refresh_token, insecure)
  const refreshed = await oauth.processRefreshTokenResponse(as, client, res)
  assert.notEqual(refreshed.refresh_token, tokens.refresh_token)
  assert.ok(refreshed.access_token)

  const api = await oauth.protectedResourceRequest(refreshed.access_token, 'GET', new URL('/echo/hello?x=1', issuer), undefined, undefined, insecure)
  assert.equal(api.status, 200)
  const echoed = await api.json()
  assert.equal(echoed.path, '/hello')
  assert.ok(echoed.headers['X-Api-Key'], 'the upstream received the injected key')
  assert.equal(echoed.headers.Authorization, undefined, 'the app token never reaches the upstream')
})

test('an unknown refresh token is refused with invalid_grant', async () => {
  const as = await discover()
  const tokens = await exchange(as, await devIDToken('node-bob'))
  const res = await oauth.refreshTokenGrantRequest(as, client, oauth.None(), 'kgr_' + 'A'.repeat(43), insecure)
  await assert.rejects(oauth.processRefreshTokenResponse(as, client, res), (err) => {
    assert.equal(err.error, 'invalid_grant')
    return true
  })
  assert.ok(tokens.refresh_token)
})
