package jws

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func enc(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestParseHeader(t *testing.T) {
	tests := []struct {
		name, json string
		want       Header
		wantErr    string
	}{
		{"minimal", `{"alg":"ES256"}`, Header{Alg: "ES256"}, ""},
		{"all", `{"alg":"EdDSA","kid":"k1","typ":"at+jwt"}`, Header{Alg: "EdDSA", Kid: "k1", Typ: "at+jwt", HasTyp: true}, ""},
		{"empty typ is present", `{"alg":"ES256","typ":""}`, Header{Alg: "ES256", HasTyp: true}, ""},
		{"member names are exact", `{"ALG":"ES256","alg":"EdDSA"}`, Header{Alg: "EdDSA"}, ""},
		{"crit", `{"alg":"ES256","crit":["exp"]}`, Header{}, "crit"},
		{"empty crit", `{"alg":"ES256","crit":[]}`, Header{}, "crit"},
		{"jwk", `{"alg":"ES256","jwk":{"kty":"EC"}}`, Header{}, "jwk"},
		{"jku", `{"alg":"ES256","jku":"https://x"}`, Header{}, "jku"},
		{"x5u", `{"alg":"ES256","x5u":"https://x"}`, Header{}, "x5u"},
		{"x5c", `{"alg":"ES256","x5c":["MII"]}`, Header{}, "x5c"},
		{"alg missing", `{"kid":"k"}`, Header{}, "alg missing"},
		{"alg not a string", `{"alg":1}`, Header{}, "alg header is not a string"},
		{"not an object", `["alg"]`, Header{}, "not a JSON object"},
		{"null", `null`, Header{}, "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseHeader(enc(tt.json))
			if tt.wantErr != "" {
				if !isHeaderError(err) || !strings.Contains(Reason(err), tt.wantErr) {
					t.Fatalf("err = %v, want a HeaderError mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseHeader = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
	if _, err := ParseHeader("eyJhbGciOiJFUzI1NiJ9="); !isHeaderError(err) {
		t.Errorf("padded base64 accepted: %v", err)
	}
}

func FuzzParseHeader(f *testing.F) {
	for _, s := range []string{`{"alg":"ES256"}`, `{"alg":"ES256","crit":[]}`, `{"alg":"ES256","jwk":{}}`, `{}`, `x`} {
		f.Add(enc(s))
	}
	f.Fuzz(func(t *testing.T, seg string) {
		h, err := ParseHeader(seg)
		if err == nil && h.Alg == "" {
			t.Fatal("accepted a header without alg")
		}
	})
}

func isHeaderError(err error) bool {
	_, ok := errors.AsType[*HeaderError](err)
	return ok
}
