package config

import (
	"errors"
	"net/url"
	"strings"
)

// Database drivers named by a DSN.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// DSN is a parsed `database` setting.
type DSN struct {
	Driver string // DriverSQLite or DriverPostgres
	Path   string // sqlite: the file path, everything after "sqlite://"
	URL    string // postgres: the whole URL as given, for pgx
}

// Redacted returns the DSN for logs, with any password replaced by "xxxxx".
func (d DSN) Redacted() string {
	if d.Driver == DriverSQLite {
		return "sqlite://" + d.Path
	}
	if u, err := url.Parse(d.URL); err == nil {
		return u.Redacted()
	}
	return d.Driver + "://[redacted]"
}

// ParseDSN parses "sqlite://PATH" (PATH relative, or absolute after a third slash) and
// "postgres://..." or "postgresql://..." URLs. Errors never repeat the DSN: it may hold a password.
func ParseDSN(dsn string) (DSN, error) {
	if strings.ContainsRune(dsn, 0) {
		return DSN{}, errors.New("database DSN must not contain NUL bytes")
	}
	switch {
	case strings.HasPrefix(dsn, "sqlite://"):
		p := strings.TrimPrefix(dsn, "sqlite://")
		switch {
		case p == "":
			return DSN{}, errors.New("sqlite DSN has no file path (want sqlite://keygate.db or sqlite:///abs/path.db)")
		case strings.Contains(p, "?"):
			return DSN{}, errors.New("sqlite DSN must not have ?options; keygate sets the pragmas itself")
		case strings.HasSuffix(p, "/"):
			return DSN{}, errors.New("sqlite DSN path names a directory, not a file")
		}
		return DSN{Driver: DriverSQLite, Path: p}, nil
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		u, err := url.Parse(dsn)
		if err != nil {
			// url errors quote the input, and a malformed password can end up in the host or port.
			return DSN{}, errors.New("invalid postgres URL (percent-encode special characters in the user name and password)")
		}
		if u.Host == "" && u.Query().Get("host") == "" {
			return DSN{}, errors.New("postgres URL has no host")
		}
		return DSN{Driver: DriverPostgres, URL: dsn}, nil
	case dsn == "":
		return DSN{}, errors.New("database DSN is empty")
	}
	scheme, _, ok := strings.Cut(dsn, "://")
	if ok && len(scheme) <= 16 && !strings.ContainsFunc(scheme, func(r rune) bool { return !isSchemeChar(r) }) {
		return DSN{}, errors.New("unsupported database scheme " + `"` + scheme + `"` + " (want sqlite://, postgres:// or postgresql://)")
	}
	return DSN{}, errors.New("unsupported database DSN (want sqlite://PATH, postgres:// or postgresql://)")
}

func isSchemeChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.'
}
