package vault

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const plain = "sk-live-VERY-SECRET-0123456789"

func TestSecretRedactsEverywhere(t *testing.T) {
	s := NewSecret([]byte(plain))
	type holder struct {
		Name  string
		Key   Secret
		inner Secret
		Ptr   *Secret
	}
	h := holder{Name: "openai", Key: s, inner: s, Ptr: &s}

	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("loaded", "key", s, "holder", h, "ptr", &s)
	var textBuf bytes.Buffer
	slog.New(slog.NewTextHandler(&textBuf, nil)).Info("loaded", "key", s)
	js, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	txt, err := s.MarshalText()
	if err != nil {
		t.Fatal(err)
	}

	cases := map[string]string{
		"%v":           fmt.Sprintf("%v", s),
		"%+v":          fmt.Sprintf("%+v", s),
		"%#v":          fmt.Sprintf("%#v", s),
		"%s":           fmt.Sprintf("%s", s),
		"%q":           fmt.Sprintf("%q", s),
		"%x":           fmt.Sprintf("%x", s),
		"%X":           fmt.Sprintf("%X", s),
		"%d":           fmt.Sprintf("%d", s),
		"%v pointer":   fmt.Sprintf("%v", &s),
		"%v struct":    fmt.Sprintf("%v", h),
		"%+v struct":   fmt.Sprintf("%+v", h),
		"%#v struct":   fmt.Sprintf("%#v", h),
		"%v slice":     fmt.Sprintf("%v", []Secret{s}),
		"%v map":       fmt.Sprintf("%v", map[string]Secret{"k": s}),
		"Sprint":       fmt.Sprint(s),
		"Sprintln":     fmt.Sprintln(s),
		"String":       s.String(),
		"error %v":     fmt.Errorf("bad key %v: %w", s, errors.New("x")).Error(),
		"error %s":     fmt.Errorf("bad key %s", s).Error(),
		"slog json":    logBuf.String(),
		"slog text":    textBuf.String(),
		"json.Marshal": string(js),
		"MarshalText":  string(txt),
	}
	for name, got := range cases {
		t.Run(name, func(t *testing.T) {
			if strings.Contains(got, plain) || strings.Contains(got, fmt.Sprintf("%x", plain)) ||
				strings.Contains(got, fmt.Sprint([]byte(plain))[:20]) {
				t.Fatalf("value leaked: %s", got)
			}
		})
	}
	for _, name := range []string{"%v", "%+v", "%#v", "%s", "%q", "String", "MarshalText"} {
		if cases[name] != "[redacted]" {
			t.Errorf("%s = %q, want [redacted]", name, cases[name])
		}
	}
	if want := `{"Name":"openai","Key":"[redacted]","Ptr":"[redacted]"}`; string(js) != want {
		t.Errorf("json = %s, want %s", js, want)
	}
	if !strings.Contains(logBuf.String(), `"key":"[redacted]"`) {
		t.Errorf("slog json = %s", logBuf.String())
	}
}

func TestSecretAccessors(t *testing.T) {
	in := []byte(plain)
	s := NewSecret(in)
	clear(in) // NewSecret copied
	if got := string(s.Reveal()); got != plain {
		t.Fatalf("Reveal = %q", got)
	}
	if s.Len() != len(plain) || s.IsZero() {
		t.Fatalf("Len = %d, IsZero = %v", s.Len(), s.IsZero())
	}
	if !s.Equal([]byte(plain)) || s.Equal([]byte(plain+"x")) || s.Equal(nil) {
		t.Fatal("Equal wrong")
	}
	var zero Secret
	if !zero.IsZero() || zero.Reveal() != nil || !NewSecret(nil).IsZero() {
		t.Fatal("zero Secret not empty")
	}
}
