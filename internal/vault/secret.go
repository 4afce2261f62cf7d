package vault

import (
	"crypto/subtle"
	"fmt"
	"io"
	"log/slog"
)

const redacted = "[redacted]"

// Secret holds a secret value and refuses to print it. Every formatting
// path (fmt verbs, log/slog, encoding/json, encoding.TextMarshaler) yields
// "[redacted]"; only Reveal gives the bytes back.
//
// The bytes sit behind a pointer so that even reflection-based printing of a
// struct with an unexported Secret field (which cannot call these methods)
// shows an address, not the value. The zero Secret is empty.
type Secret struct {
	p *secretBytes
}

type secretBytes struct{ b []byte }

// NewSecret returns a Secret holding a copy of b. The caller may clear b
// afterwards.
func NewSecret(b []byte) Secret {
	if len(b) == 0 {
		return Secret{}
	}
	c := make([]byte, len(b))
	copy(c, b)
	return Secret{p: &secretBytes{b: c}}
}

// Reveal returns the secret bytes. The slice is the Secret's own storage,
// not a copy: callers must not modify it, and should not keep it longer than
// they need it.
func (s Secret) Reveal() []byte {
	if s.p == nil {
		return nil
	}
	return s.p.b
}

// Len returns the length of the value in bytes.
func (s Secret) Len() int { return len(s.Reveal()) }

// IsZero reports whether the Secret is empty.
func (s Secret) IsZero() bool { return s.Len() == 0 }

// Equal reports whether the value equals other, in time that depends only on
// the lengths.
func (s Secret) Equal(other []byte) bool {
	return subtle.ConstantTimeCompare(s.Reveal(), other) == 1
}

// String returns "[redacted]".
func (Secret) String() string { return redacted }

// GoString returns "[redacted]", so %#v does not show the value either.
func (Secret) GoString() string { return redacted }

// Format prints "[redacted]" for every verb, including %x, %q and %d, which
// would otherwise bypass String.
func (Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON implements json.Marshaler: the JSON string "[redacted]".
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText implements encoding.TextMarshaler.
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
