// DPoP (RFC 9449) with standard clients, unmodified: keys and proofs from
// the npm `dpop` package, token exchange, refresh and the protected resource
// request through oauth4webapi's DPoP handle. KEYGATE_ISSUER names the
// server; the dev IdP under /dev supplies the ID token.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as oauth from 'oauth4webapi'
import { generateKeyPair, generateProof, calculateThumbprint } from 'dpop'

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

// withNonceRetry runs request once more when the server asks for a DPoP
// nonce: the DPoP handle has cached the nonce from the error response, so
// the retry's proof carries it (oauth4webapi docs, isDPoPNonceError).
async function withNonceRetry (request) {
  try {
    return await request()
  } catch (err) {
    if (oauth.isDPoPNonceError(err)) return request()
    throw err
  }
}

function payload (jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString())
}

for (const alg of ['ES256', 'Ed25519']) {
  test(`DPoP-bound token exchange, refresh and proxied call (${alg})`, async () => {
    const as = await discover()
    assert.ok(as.dpop_signing_alg_values_supported.includes('ES256'))
    const keyPair = await generateKeyPair(alg)
    const DPoP = oauth.DPoP(client, keyPair)
    const jkt = await calculateThumbprint(keyPair.publicKey)

    const idToken = await devIDToken(`node-dpop-${alg}`)
    const tokens = await withNonceRetry(async () => {
      const res = await oauth.genericTokenEndpointRequest(as, client, oauth.None(),
        'urn:ietf:params:oauth:grant-type:token-exchange',
        { subject_token: idToken, subject_token_type: 'urn:ietf:params:oauth:token-type:id_token' },
        { ...insecure, DPoP })
      return oauth.processGenericTokenEndpointResponse(as, client, res)
    })
    assert.equal(tokens.token_type, 'dpop')
    assert.equal(payload(tokens.access_token).cnf.jkt, jkt)

    const refreshed = await withNonceRetry(async () => {
      const res = await oauth.refreshTokenGrantRequest(as, client, oauth.None(), tokens.refresh_token, { ...insecure, DPoP })
      return oauth.processRefreshTokenResponse(as, client, res)
    })
    assert.equal(refreshed.token_type, 'dpop')
    assert.equal(payload(refreshed.access_token).cnf.jkt, jkt)

    // The refresh token is bound to the key: without a proof it is refused.
    const unbound = await oauth.refreshTokenGrantRequest(as, client, oauth.None(), refreshed.refresh_token, insecure)
    await assert.rejects(oauth.processRefreshTokenResponse(as, client, unbound), (err) => {
      assert.equal(err.error, 'invalid_grant')
      return true
    })

    // protectedResourceRequest throws on a WWW-Authenticate challenge, so
    // a use_dpop_nonce answer is retried like at the token endpoint.
    const api = await withNonceRetry(() => oauth.protectedResourceRequest(refreshed.access_token, 'GET',
      new URL('/echo/hello?x=1', issuer), undefined, undefined, { ...insecure, DPoP }))
    assert.equal(api.status, 200)
    const echoed = await api.json()
    assert.equal(echoed.path, '/hello')
    assert.equal(echoed.query, 'x=1')
    assert.ok(echoed.headers['X-Api-Key'], 'the upstream received the injected key')
    assert.equal(echoed.headers.Authorization, undefined, 'the app token never reaches the upstream')
    assert.equal(echoed.headers.Dpop, undefined, 'the proof never reaches the upstream')

    // A hand-made proof from the dpop package works the same way, once.
    const url = new URL('/echo/hello', issuer)
    const proof = await generateProof(keyPair, url.href, 'GET', undefined, refreshed.access_token)
    const headers = { authorization: `DPoP ${refreshed.access_token}`, dpop: proof }
    assert.equal((await fetch(url, { headers })).status, 200)
    const replay = await fetch(url, { headers })
    assert.equal(replay.status, 401)
    assert.match(replay.headers.get('www-authenticate'), /^DPoP .*error="invalid_dpop_proof"/)

    // The bound token as a bearer token is refused with a DPoP challenge.
    const bearer = await fetch(url, { headers: { authorization: `Bearer ${refreshed.access_token}` } })
    assert.equal(bearer.status, 401)
    assert.match(bearer.headers.get('www-authenticate'), /^DPoP /)
  })
}
