package cli

import (
	"fmt"
	"io"
	"strings"
)

// walkthrough is the dev-mode curl session. Every line can be pasted into
// bash or zsh as is; JSON fields are picked out with sed so nothing beyond
// curl is needed. The test runs it verbatim against a live server.
const walkthrough = `
keygate dev server: public {{BASE}}, admin http://{{ADMIN}}, data in {{DATADIR}}/

Paste these lines into a shell, in order:

  B={{BASE}}

  # 1. Your app's user signs in with your IdP. Here the dev IdP mints an ID token for alice:
  ID_TOKEN=$(curl -s -X POST $B/dev/id-token -d sub=alice | sed -n 's/.*"id_token":"\([^"]*\)".*/\1/p')

  # 2. The app exchanges it for keygate tokens (RFC 8693 token exchange):
  TOKENS=$(curl -s $B/oauth2/token -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange -d client_id=dev-app -d subject_token_type=urn:ietf:params:oauth:token-type:id_token -d subject_token=$ID_TOKEN); echo $TOKENS
  AT=$(echo $TOKENS | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p'); RT=$(echo $TOKENS | sed -n 's/.*"refresh_token":"\([^"]*\)".*/\1/p')

  # 3. The app calls the upstream through keygate. The echo upstream shows what it received:
  #    X-Api-Key holds the vault's key, which the app never had; the app's token is gone.
  curl -s -H "Authorization: Bearer $AT" $B/echo/hello; echo

  # 4. Refresh: the refresh token rotates on every use.
  #    (Refresh tokens and client secrets go on stdin, never in curl's arguments, where ps shows them.)
  TOKENS=$(echo "grant_type=refresh_token&client_id=dev-app&refresh_token=$RT" | curl -s $B/oauth2/token -d @-); echo $TOKENS
  AT=$(echo $TOKENS | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p'); RT=$(echo $TOKENS | sed -n 's/.*"refresh_token":"\([^"]*\)".*/\1/p')

  # 5. Revoke the refresh token: its whole family ends, access tokens included, at once (401):
  echo "client_id=dev-app&token=$RT" | curl -s $B/oauth2/revoke -d @-
  curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $AT" $B/echo/hello

  # 6. A backend authenticates as a confidential client (client_credentials):
  printf 'user = "dev-backend:%s"\n' "$(cat {{SECRETFILE}})" | curl -s -K - $B/oauth2/token -d grant_type=client_credentials -d scope=echo; echo

Also: $B/.well-known/oauth-authorization-server, $B/.well-known/jwks.json, http://{{ADMIN}}/metrics.
`

// printWalkthrough prints the walk-through for the public address the
// server bound, its admin address, and the data directory as the user
// should type it.
func printWalkthrough(w io.Writer, publicAddr, adminAddr, dataDir string) {
	r := strings.NewReplacer("{{BASE}}", "http://"+publicAddr, "{{ADMIN}}", adminAddr,
		"{{DATADIR}}", dataDir, "{{SECRETFILE}}", dataDir+"/dev-backend.secret")
	fmt.Fprint(w, r.Replace(walkthrough))
}
