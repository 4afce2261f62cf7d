package admin

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/httpapi"
)

func TestParseRevokeBody(t *testing.T) {
	for _, tt := range []struct {
		body        string
		kind, value string
	}{
		{`{"subject":"dev|alice"}`, "subject", "dev|alice"},
		{` {"token" : "kgc_x"} ` + "\n", "token", "kgc_x"},
		{`{"family":"f1"}`, "family", "f1"},
		{`{"client":"dev-backend"}`, "client", "dev-backend"},
	} {
		kind, value, err := parseRevokeBody([]byte(tt.body))
		if err != nil || kind != tt.kind || value != tt.value {
			t.Errorf("parseRevokeBody(%q) = %q, %q, %v; want %q, %q", tt.body, kind, value, err, tt.kind, tt.value)
		}
	}
	for _, body := range []string{``, `{}`, `null`, `[]`, `"subject"`, `not json`, `{"subject":"a","client":"b"}`,
		`{"subject":"a","subject":"b"}`, `{"user":"a"}`, `{"Subject":"a"}`, `{"subject":1}`, `{"subject":null}`,
		`{"subject":""}`, `{"subject":["a"]}`, `{"subject":"a"} {"subject":"b"}`, `{"subject":"a"}}`, `{"subject":"a"`,
		`{"subject":"` + strings.Repeat("a", maxRevokeValue+1) + `"}`} {
		if kind, value, err := parseRevokeBody([]byte(body)); err == nil {
			t.Errorf("parseRevokeBody(%.40q) accepted: %q %q", body, kind, value)
		}
	}
}

// FuzzRevokeBody: the parser never panics, refuses with a 400 problem, and
// what it accepts is one JSON object holding exactly one selector whose
// value it returns.
func FuzzRevokeBody(f *testing.F) {
	for _, s := range []string{`{"subject":"dev|alice"}`, `{"token":"kgc_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`,
		`{"family":"f"}`, `{"client":"c"}`, `{"subject":"a","client":"b"}`, `{"subject":"a","subject":"b"}`,
		`{}`, `[]`, `null`, `{"subject":null}`, `{"subject":1}`, `{"subject":"a"} x`, `{"subject":"a"}}`,
		`{"subject":"\u00e9\ud800"}`, `{"token":"a\"b"}`, "{\"subject\":\"\xff\"}", ``, `{"x":{"subject":"a"}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		kind, value, err := parseRevokeBody(body)
		if err != nil {
			if p, ok := errors.AsType[*httpapi.Problem](err); !ok || p.Status != http.StatusBadRequest {
				t.Fatalf("refusal %v is not a 400 problem", err)
			}
			return
		}
		switch kind {
		case RevokeSubject, RevokeFamily, RevokeClient, RevokeToken:
		default:
			t.Fatalf("accepted kind %q", kind)
		}
		if value == "" || len(value) > maxRevokeValue {
			t.Fatalf("accepted value of %d bytes", len(value))
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("accepted a body encoding/json refuses: %v", err)
		}
		if len(m) != 1 || m[kind] != value {
			t.Fatalf("accepted %q=%q from a body with %d selectors: %v", kind, value, len(m), m)
		}
	})
}
