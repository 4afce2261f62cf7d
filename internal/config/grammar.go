package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written as a Go duration string ("90s", "5m", "24h").
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// ParseDuration parses a Go duration, with a message that says what is expected.
func ParseDuration(s string) (Duration, error) {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (want a Go duration such as 90s, 5m or 24h)", s)
	}
	return Duration(v), nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if err := wantScalar(n); err != nil {
		return err
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Size is a number of bytes, written as plain bytes or with a KiB, MiB or GiB suffix.
type Size int64

// Size units.
const (
	KiB Size = 1 << 10
	MiB Size = 1 << 20
	GiB Size = 1 << 30
)

// ParseSize parses "1048576", "512KiB", "1MiB" or "2GiB".
func ParseSize(s string) (Size, error) {
	num, mult := s, Size(1)
	for _, u := range []struct {
		suffix string
		mult   Size
	}{{"KiB", KiB}, {"MiB", MiB}, {"GiB", GiB}} {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := parseCount(num)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q (want bytes, or a number with KiB, MiB or GiB)", s)
	}
	if n > math.MaxInt64/int64(mult) {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return Size(n) * mult, nil
}

func (s Size) String() string {
	switch {
	case s != 0 && s%GiB == 0:
		return strconv.FormatInt(int64(s/GiB), 10) + "GiB"
	case s != 0 && s%MiB == 0:
		return strconv.FormatInt(int64(s/MiB), 10) + "MiB"
	case s != 0 && s%KiB == 0:
		return strconv.FormatInt(int64(s/KiB), 10) + "KiB"
	}
	return strconv.FormatInt(int64(s), 10)
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	if err := wantScalar(n); err != nil {
		return err
	}
	v, err := ParseSize(n.Value)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Rate is N events per second, minute or hour ("60/m").
type Rate struct {
	Raw       string        // as written
	N         int64         // events
	Per       time.Duration // per this long: 1s, 1m or 1h
	PerSecond float64       // N / Per in seconds, for golang.org/x/time/rate
}

// ParseRate parses "N/s", "N/m" or "N/h".
func ParseRate(s string) (Rate, error) {
	num, unit, ok := strings.Cut(s, "/")
	if !ok {
		return Rate{}, fmt.Errorf("invalid rate %q (want N/s, N/m or N/h)", s)
	}
	n, err := parseCount(num)
	if err != nil || n == 0 {
		return Rate{}, fmt.Errorf("invalid rate %q: count must be a positive integer", s)
	}
	var per time.Duration
	switch unit {
	case "s":
		per = time.Second
	case "m":
		per = time.Minute
	case "h":
		per = time.Hour
	default:
		return Rate{}, fmt.Errorf("invalid rate %q: unit must be s, m or h", s)
	}
	return Rate{Raw: s, N: n, Per: per, PerSecond: float64(n) / per.Seconds()}, nil
}

// IsZero reports whether no rate was set.
func (r Rate) IsZero() bool { return r.N == 0 && r.Per == 0 }

// DefaultBurst is the burst used when a limit gives none: one second's worth, at least 1.
func (r Rate) DefaultBurst() int {
	b := math.Ceil(r.PerSecond)
	if b < 1 {
		return 1
	}
	if b > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(b)
}

func (r Rate) String() string { return r.Raw }

// UnmarshalYAML implements yaml.Unmarshaler.
func (r *Rate) UnmarshalYAML(n *yaml.Node) error {
	if err := wantScalar(n); err != nil {
		return err
	}
	v, err := ParseRate(n.Value)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.Raw), nil }

// Quota is N events per fixed window ("1000/24h").
type Quota struct {
	Raw    string // as written
	N      int64
	Window time.Duration
}

// ParseQuota parses "N/duration".
func ParseQuota(s string) (Quota, error) {
	num, win, ok := strings.Cut(s, "/")
	if !ok {
		return Quota{}, fmt.Errorf("invalid quota %q (want N/duration such as 1000/24h)", s)
	}
	n, err := parseCount(num)
	if err != nil || n == 0 {
		return Quota{}, fmt.Errorf("invalid quota %q: count must be a positive integer", s)
	}
	d, err := time.ParseDuration(win)
	if err != nil || d <= 0 {
		return Quota{}, fmt.Errorf("invalid quota %q: window must be a positive Go duration such as 24h", s)
	}
	return Quota{Raw: s, N: n, Window: d}, nil
}

// IsZero reports whether no quota was set.
func (q Quota) IsZero() bool { return q.N == 0 && q.Window == 0 }

func (q Quota) String() string { return q.Raw }

// UnmarshalYAML implements yaml.Unmarshaler.
func (q *Quota) UnmarshalYAML(n *yaml.Node) error {
	if err := wantScalar(n); err != nil {
		return err
	}
	v, err := ParseQuota(n.Value)
	if err != nil {
		return err
	}
	*q = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (q Quota) MarshalText() ([]byte, error) { return []byte(q.Raw), nil }

// BlockCondition is "METRIC > THRESHOLD in WINDOW", e.g. "auth_failures > 50 in 5m":
// the rule fires when more than Threshold events of Metric happen within Window.
type BlockCondition struct {
	Raw       string // as written
	Metric    string // MetricLimitHits or MetricAuthFailures
	Threshold int64
	Window    time.Duration
}

// ParseBlockCondition parses "limit_hits > N in D" or "auth_failures > N in D".
func ParseBlockCondition(s string) (BlockCondition, error) {
	f := strings.Fields(strings.ReplaceAll(s, ">", " > "))
	if len(f) != 5 || f[1] != ">" || f[3] != "in" {
		return BlockCondition{}, fmt.Errorf("invalid condition %q (want \"limit_hits > N in DURATION\" or \"auth_failures > N in DURATION\")", s)
	}
	if f[0] != MetricLimitHits && f[0] != MetricAuthFailures {
		return BlockCondition{}, fmt.Errorf("invalid condition %q: metric must be %s or %s", s, MetricLimitHits, MetricAuthFailures)
	}
	n, err := parseCount(f[2])
	if err != nil {
		return BlockCondition{}, fmt.Errorf("invalid condition %q: threshold must be a non-negative integer", s)
	}
	d, err := time.ParseDuration(f[4])
	if err != nil || d <= 0 {
		return BlockCondition{}, fmt.Errorf("invalid condition %q: window must be a positive Go duration such as 10m", s)
	}
	return BlockCondition{Raw: s, Metric: f[0], Threshold: n, Window: d}, nil
}

// IsZero reports whether no condition was set.
func (b BlockCondition) IsZero() bool { return b.Metric == "" }

func (b BlockCondition) String() string { return b.Raw }

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *BlockCondition) UnmarshalYAML(n *yaml.Node) error {
	if err := wantScalar(n); err != nil {
		return err
	}
	v, err := ParseBlockCondition(n.Value)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (b BlockCondition) MarshalText() ([]byte, error) { return []byte(b.Raw), nil }

// parseCount parses a non-negative decimal integer made of ASCII digits only (no sign, no spaces).
func parseCount(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("empty")
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, errors.New("not a number")
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

func wantScalar(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a string, got %s", describe(n))
	}
	return nil
}
